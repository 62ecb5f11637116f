from django.urls import path

from web import alerts, evidence, fleet, home, integrity, log, people, policy, remediations, runs, signin

app_name = "web"
urlpatterns = [
    path("", home.home, name="home"),
    path("signin/", signin.signin, name="signin"),
    path("signin/code/", signin.signin_code, name="signin-code"),
    path("signin/enrol/", signin.signin_enrol, name="signin-enrol"),
    path("signout/", signin.signout, name="signout"),
    path("password/", signin.password, name="password"),
    path("log/", log.log_list, name="log"),
    path("log/<int:seq>/", log.log_detail, name="log-event"),
    path("evidence/", evidence.evidence, name="evidence"),
    path("evidence/<uuid:export_id>/", evidence.evidence_row, name="evidence-row"),
    path("evidence/<uuid:export_id>/download/", evidence.evidence_download, name="evidence-download"),
    path("integrity/", integrity.integrity, name="integrity"),
    path("integrity/keys/<str:key_id>.pem", integrity.key_pem, name="key-pem"),
    path("people/", people.people, name="people"),
    path("people/policy/", people.sign_in_policy, name="sign-in-policy"),
    path("people/<str:username>/", people.person, name="person"),
    path("models/", fleet.models_overview, name="models"),
    path("models/<str:name>/", fleet.model_page, name="model"),
    path("models/<str:name>/policy/", policy.policy_editor, name="policy"),
    path("runs/<uuid:run_id>/", runs.run_page, name="run"),
    path("runs/<uuid:run_id>/again/", runs.run_again, name="run-again"),
    path("runs/<uuid:run_id>/features/<str:feature>/", runs.run_feature, name="run-feature"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/<uuid:alert_id>/<str:action>/", alerts.alert_action, name="alert-action"),
    path("remediations/", remediations.queue, name="remediations"),
    path("remediations/new/", remediations.new_request, name="remediation-new"),
    path("remediations/<uuid:request_id>/", remediations.detail, name="remediation"),
    path("remediations/<uuid:request_id>/status/", remediations.status, name="remediation-status"),
]
