"""The Python side of benches/compare.sh: verifies every envelope of an
exported file with securesystemslib, as a team scripting its own check would.

usage: compare_securesystemslib.py DIR   (DIR holds envelopes.json, keys.json)
Prints {"verifier": "securesystemslib", "count": N, "seconds": S}. The clock
starts before the file is read, as the provledger side's does.
"""
import json
import sys
import time

from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

started = time.perf_counter()
directory = sys.argv[1]
with open(f"{directory}/envelopes.json") as f:
    entries = json.load(f)
with open(f"{directory}/keys.json") as f:
    keys = {
        keyid: SSlibKey(keyid, "ed25519", "ed25519", {"public": public})
        for keyid, public in json.load(f).items()
    }
for entry in entries:
    keyid = entry["envelope"]["signatures"][0]["keyid"]
    envelope = Envelope.from_dict(entry["envelope"])
    envelope.verify([keys[keyid]], 1)  # raises VerificationError on a bad signature
seconds = time.perf_counter() - started
print(json.dumps({"verifier": "securesystemslib", "count": len(entries), "seconds": seconds}))
