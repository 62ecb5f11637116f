// Verifies one audit-log event in the browser, with WebCrypto only: its hash, its Ed25519
// signature, its Merkle leaf and its RFC 9162 inclusion proof up to a signed checkpoint
// (docs/evidence-format.md). Key ids seen before are pinned in this browser: a server that
// later shows another public key under the same id is caught.
"use strict";

(function () {
  const encoder = new TextEncoder();
  const PINS = "driftledger.pinned-keys";

  function hex(bytes) {
    return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function unhex(text) {
    if (!/^([0-9a-f]{2})*$/.test(text || "")) throw new Error("not lowercase hex: " + text);
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }

  function unbase64(text) {
    const raw = atob(text);
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  async function ed25519Verify(publicKeyHex, signature, message) {
    const key = await crypto.subtle.importKey("raw", unhex(publicKeyHex), { name: "Ed25519" }, false, ["verify"]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  }

  async function keyIdOf(publicKeyHex) {
    return hex(await sha256(unhex(publicKeyHex))).slice(0, 16);
  }

  // RFC 8785 for the checkpoint's five members: ASCII keys sorted, JSON strings and integers.
  function canonicalCheckpoint(c) {
    const members = { key_id: c.key_id, log_id: c.log_id, root_hash: c.root_hash, timestamp: c.timestamp, tree_size: c.tree_size };
    return "{" + Object.keys(members).sort().map((k) => JSON.stringify(k) + ":" + JSON.stringify(members[k])).join(",") + "}";
  }

  // RFC 9162 section 2.1.3.2.
  async function rootFromInclusion(leafIndex, treeSize, leafHash, path) {
    let fn = BigInt(leafIndex);
    let sn = BigInt(treeSize) - 1n;
    if (fn > sn) throw new Error("leaf index beyond the tree");
    let r = leafHash;
    for (const step of path) {
      const p = unhex(step);
      if (sn === 0n) throw new Error("the path is longer than the tree is deep");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(concat(Uint8Array.of(1), p, r));
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await sha256(concat(Uint8Array.of(1), r, p));
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the path is shorter than the tree is deep");
    return hex(r);
  }

  function pinned(keyId, publicKeyHex) {
    let pins = {};
    try {
      pins = JSON.parse(localStorage.getItem(PINS) || "{}");
    } catch (e) {
      pins = {};
    }
    if (pins[keyId] && pins[keyId] !== publicKeyHex) {
      return { ok: false, text: "key " + keyId + " is not the public key this browser saw under that id before" };
    }
    const first = !pins[keyId];
    pins[keyId] = publicKeyHex;
    try {
      localStorage.setItem(PINS, JSON.stringify(pins));
    } catch (e) {
      /* private mode: nothing pinned */
    }
    return {
      ok: true,
      text: first
        ? "key " + keyId + " seen for the first time in this browser: compare it with the key id your organisation published"
        : "key " + keyId + " is the same public key this browser saw before",
    };
  }

  async function check(name, run) {
    try {
      const outcome = await run();
      return { name, ok: outcome.ok, text: outcome.text };
    } catch (error) {
      return { name, ok: false, text: String(error.message || error) };
    }
  }

  // Each check is independent, so that one failing does not hide what else holds.
  async function verifyEvent(event) {
    const bytes = encoder.encode(event.canonical);
    const results = [];
    results.push(await check("hash", async () => {
      const computed = hex(await sha256(bytes));
      return { ok: computed === event.hash, text: "SHA-256 of the canonical envelope is " + computed + (computed === event.hash ? ", as recorded" : ", not the recorded " + event.hash) };
    }));
    results.push(await check("key", async () => {
      if (!event.public_key) return { ok: false, text: "the server gave no public key for " + event.key_id };
      const id = await keyIdOf(event.public_key);
      if (id !== event.key_id) return { ok: false, text: "the public key's id is " + id + ", not " + event.key_id };
      return pinned(event.key_id, event.public_key);
    }));
    results.push(await check("signature", async () => {
      const ok = await ed25519Verify(event.public_key, unbase64(event.signature), bytes);
      return { ok, text: ok ? "the Ed25519 signature verifies under key " + event.key_id : "the Ed25519 signature does not verify under key " + event.key_id };
    }));
    const proof = event.proof;
    if (!proof) {
      results.push({ name: "proof", ok: false, text: "no checkpoint covers this event yet: reload in a minute" });
      return results;
    }
    const leaf = await sha256(concat(Uint8Array.of(0), bytes));
    results.push(await check("leaf", async () => {
      const computed = hex(leaf);
      return { ok: computed === event.leaf_hash, text: "leaf hash H(0x00 ‖ envelope) is " + computed + (computed === event.leaf_hash ? ", as recorded" : ", not the recorded " + event.leaf_hash) };
    }));
    results.push(await check("proof", async () => {
      if (proof.leaf_index !== event.seq - 1) return { ok: false, text: "the proof is for leaf " + proof.leaf_index + ", not this event's " + (event.seq - 1) };
      const root = await rootFromInclusion(proof.leaf_index, proof.tree_size, leaf, proof.path);
      const ok = root === proof.checkpoint.root_hash;
      return { ok, text: ok ? "the inclusion proof (" + proof.path.length + " hashes) leads to the checkpoint's root " + root : "the inclusion proof leads to " + root + ", not the checkpoint's root " + proof.checkpoint.root_hash };
    }));
    results.push(await check("checkpoint", async () => {
      const c = proof.checkpoint;
      if (!c.public_key) return { ok: false, text: "the server gave no public key for checkpoint key " + c.key_id };
      if ((await keyIdOf(c.public_key)) !== c.key_id) return { ok: false, text: "the checkpoint key's id does not match its public key" };
      const pin = pinned(c.key_id, c.public_key);
      if (!pin.ok) return pin;
      const ok = await ed25519Verify(c.public_key, unbase64(c.signature), encoder.encode(canonicalCheckpoint(c)));
      return { ok, text: ok ? "the checkpoint of tree size " + c.tree_size + " is signed by key " + c.key_id : "the checkpoint's signature does not verify" };
    }));
    return results;
  }

  function show(results, list, section) {
    list.replaceChildren(
      ...results.map((result) => {
        const item = document.createElement("li");
        item.className = result.ok ? "ok" : "failed";
        item.dataset.check = result.name;
        const mark = document.createElement("strong");
        mark.textContent = (result.ok ? "✓ " : "✗ ") + result.name + ": ";
        item.append(mark, result.text);
        return item;
      })
    );
    const ok = results.every((result) => result.ok);
    section.dataset.outcome = ok ? "verified" : "failed";
    const summary = document.createElement("p");
    summary.className = ok ? "ok" : "failed";
    summary.id = "check-summary";
    summary.textContent = ok
      ? "Verified in this browser: the event is the one signed and it is in the signed log."
      : "Verification failed in this browser: do not rely on this event; report it.";
    list.before(summary);
  }

  window.driftledgerVerify = verifyEvent; // the browser tests call it on tampered copies

  document.addEventListener("DOMContentLoaded", async () => {
    const data = document.getElementById("event-check");
    const list = document.getElementById("check-results");
    const section = document.getElementById("check");
    if (!data || !list) return;
    if (!window.crypto || !crypto.subtle) {
      show([{ name: "webcrypto", ok: false, text: "this browser has no WebCrypto (a page served over plain HTTP from another host has none): use the offline verifier" }], list, section);
      return;
    }
    show(await verifyEvent(JSON.parse(data.textContent)), list, section);
  });
})();
