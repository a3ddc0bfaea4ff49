"""Verify provledger envelopes with securesystemslib, an implementation we did not write.

usage: verify_dsse.py LOG_JSON KEYS_JSON
LOG_JSON is the output of `provledger log --json`; KEYS_JSON maps key id -> hex public key.
Every envelope must verify; the same envelope with its payload changed must not.
"""
import base64
import copy
import json
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

entries = json.load(open(sys.argv[1]))
keys = json.load(open(sys.argv[2]))
passed = failed = 0
for entry in entries:
    env = entry["envelope"]
    keyid = env["signatures"][0]["keyid"]
    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": keys[keyid]})
    try:
        Envelope.from_dict(copy.deepcopy(env)).verify([key], 1)
        passed += 1
    except VerificationError as e:
        print(f"entry {entry['index']}: genuine envelope rejected: {e}")
        failed += 1
    tampered = copy.deepcopy(env)
    payload = bytearray(base64.b64decode(env["payload"]))
    payload[-1] ^= 0x01
    tampered["payload"] = base64.b64encode(bytes(payload)).decode()
    try:
        Envelope.from_dict(tampered).verify([key], 1)
        print(f"entry {entry['index']}: tampered envelope accepted")
        failed += 1
    except VerificationError:
        passed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not entries else 0)
