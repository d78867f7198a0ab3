"""The one Twilio edge: webhook forms in as typed values, signatures, TwiML out, the URLs the
TwiML points at, the REST calls, recording fetch.

No module outside this package (and the virtual carrier, which plays Twilio's part) names
a Twilio parameter or header; tests/core/test_purity.py keeps it so.
"""
