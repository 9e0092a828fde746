"""Tokens minted by PyJWT, the library Python issuers use, for Revoke's interop test.

usage: pyjwt_cases.py HMAC_SECRET
Prints one JSON document: {"jwks": <the public keys>, "cases": [...]}. Each case is a token
(valid, or malformed in a way issuers and attackers produce) with PyJWT's own verdict on it,
reached the way a careful verifier reaches it: the key chosen by `kid` (the HMAC secret for a
token without one), the algorithms pinned to that key's family, no audience configured (every case has a future `exp`).

Padded base64 is left out on purpose: PyJWT accepts `==` after a signature only when the
length happens to make the padding well formed (an RS256 signature, not an HS256 one), an
artifact of its decoder rather than a rule to agree on (RFC 7515 section 2: no padding).
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

secret = sys.argv[1]
now = int(time.time())

rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ec_key = ec.generate_private_key(ec.SECP256R1())
ed_key = ed25519.Ed25519PrivateKey.generate()
other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(algorithm, key, kid):
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk["kid"] = kid
    jwk["use"] = "sig"
    return jwk


jwks = {"keys": [
    public_jwk(RSAAlgorithm, rsa_key, "rsa-1"),
    public_jwk(ECAlgorithm, ec_key, "ec-1"),
    public_jwk(OKPAlgorithm, ed_key, "ed-1"),
]}

# kid -> (verification key, the algorithms that key accepts), as the contract pins them.
verifying = {
    None: (secret, ["HS256", "HS384", "HS512"]),
    "rsa-1": (rsa_key.public_key(), ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]),
    "ec-1": (ec_key.public_key(), ["ES256"]),
    "ed-1": (ed_key.public_key(), ["EdDSA"]),
}


def pyjwt_verdict(token):
    try:
        header = jwt.get_unverified_header(token)
        key, algorithms = verifying[header.get("kid")]
        jwt.decode(token, key, algorithms=algorithms,
                   options={"verify_exp": True, "verify_iat": True, "verify_nbf": True,
                            "verify_aud": False})
        return "valid"
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return "invalid"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**extra):
    body = {"jti": "py-" + uuid.uuid4().hex, "sub": "alice", "iat": now - 5, "exp": now + 900}
    body.update(extra)
    return body


signers = {
    "HS256": (secret, None),
    "RS256": (rsa_key, "rsa-1"),
    "PS256": (rsa_key, "rsa-1"),
    "ES256": (ec_key, "ec-1"),
    "EdDSA": (ed_key, "ed-1"),
}

cases = []


def case(name, token, jti=None):
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except (jwt.PyJWTError, ValueError, TypeError):
        exp = None
    cases.append({"name": name, "token": token, "jti": jti, "exp": exp if isinstance(exp, int) else None,
                  "pyjwt": pyjwt_verdict(token)})


for alg, (key, kid) in signers.items():
    payload = claims()
    headers = {"kid": kid} if kid else None
    token = jwt.encode(payload, key, algorithm=alg, headers=headers)
    case(f"{alg} valid", token, payload["jti"])
    head, body, signature = token.split(".")
    forged = dict(payload, sub="mallory")
    case(f"{alg} payload changed after signing", f"{head}.{b64(json.dumps(forged).encode())}.{signature}")
    case(f"{alg} signature truncated", f"{head}.{body}.{signature[:-4]}")
    case(f"{alg} signature removed", f"{head}.{body}.")
    case(f"{alg} four segments", f"{token}.{signature}")
    case(f"{alg} signature with a character outside base64url", f"{head}.{body}.{signature[:-1]}*")
    case(f"{alg} relabelled alg none", jwt.encode(payload, None, algorithm="none", headers=headers))

payload = claims()
case("RS256 signed by a key nobody configured",
     jwt.encode(payload, other_rsa, algorithm="RS256", headers={"kid": "rsa-1"}))
case("RS256 with an unknown kid", jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "rsa-9"}))
public_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
confused_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
confused_body = b64(json.dumps(payload).encode())
confused_sig = b64(hmac.new(public_pem, f"{confused_header}.{confused_body}".encode(), hashlib.sha256).digest())
case("HS256 signed with the RSA public key as the secret", f"{confused_header}.{confused_body}.{confused_sig}")
case("ES256 signature relabelled RS256",
     ".".join([b64(json.dumps({"alg": "RS256", "kid": "ec-1"}).encode())]
              + jwt.encode(payload, ec_key, algorithm="ES256", headers={"kid": "ec-1"}).split(".")[1:]))
case("header that is not JSON", f"{b64(b'not json')}.{b64(json.dumps(payload).encode())}.{b64(b'sig')}")
case("payload that is not JSON", jwt.api_jws.encode(b"not json", secret, algorithm="HS256"))
case("two segments", ".".join(jwt.encode(payload, secret, algorithm="HS256").split(".")[:2]))
case("empty segments", "..")
nested = claims(aud=["a", "b"], scope="read write", extra={"deep": [1, 2.5, None, True]})
case("HS512 with nested claims", jwt.encode(nested, secret, algorithm="HS512"), nested["jti"])
unicode = claims(jti="jti-\u00e9\u6f22\u5b57-\U0001F511")
# (PyJWT judges `iss` and `aud` only when an issuer or audience is configured; Revoke
# refuses them of the wrong type always, as RFC 7519 section 4.1 defines them.)
for claim, value in [("sub", {"id": "alice"}), ("jti", 42), ("exp", "soon"), ("nbf", []), ("iat", "now")]:
    # PyJWT will not encode most of these, so its JWS layer signs the raw JSON.
    raw = json.dumps(claims(**{claim: value})).encode()
    case(f"HS256 with {claim} of the wrong type", jwt.api_jws.encode(raw, secret, algorithm="HS256"))
case("HS256 with a non-ASCII jti", jwt.encode(unicode, secret, algorithm="HS256"), unicode["jti"])

json.dump({"jwks": jwks, "cases": cases}, sys.stdout)
