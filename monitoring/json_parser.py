"""The API's JSON parser (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]). A module of its own: DRF
imports it while it defines its views, so it imports nothing of the app."""

from __future__ import annotations

import json

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with a 400 the two bodies it let through to a 500: one nested
    past the decoder's recursion limit (a RecursionError), and one whose strings hold a lone
    surrogate (a \\ud800 escape without its pair: no Unicode text, so no field, event or answer can
    hold it; a refusal that echoed it could not even be written as UTF-8)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply") from None
        if _has_lone_surrogate(data):
            raise exceptions.ParseError("JSON parse error - a string holds a lone surrogate, which is not Unicode text")
        return data


def _has_lone_surrogate(data: object) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
