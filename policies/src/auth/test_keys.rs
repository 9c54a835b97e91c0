//! Fixed test keys, generated with `openssl genrsa 2048` and `openssl ecparam -genkey`
//! for these tests only. They sign test tokens and protect nothing.
#![allow(clippy::unwrap_used)]

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const RSA_PRIVATE_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDGJ3hp8LYjJzrZ
0TqtbGqNajm1//1Fsn7EHDr3vLg/qHHAzTs58aowkeL76j0SGwC2LQjfOADLnWDz
HnJ5LAgjUPWsyvH0KBffJlsXvUxcuBktKsdalsfnjLwHMgls26resXSlFZBQEqWQ
SrsMVrYne4NmnMCXfkwHx26U/Aovz2nwHWoSnSLh5Rd4SnJtOrLdbD8gr8q5K9nx
ar26TyQLKp6FM+Xb1A6TXR7qrdNJHo3pucheVoAWGJV6zrmN8yLq9mgkLqikdnOs
ApysDV+L2jZOo/28gFaRW7wf88bmJ931+8HfV5OAmoysOx8RdAAmNAR8vue72ILj
KpJwVJHZAgMBAAECggEABYn8qhR0GO/hAPih6o9eEUwo/GhhRBmeWh0dEl1XK/4J
c6g2VGiH7Kc6qGFRZKBL26vPBHiwVVYVwSdb7+fDe04+lykN903dcKEl482IimEh
4LL3jeBqtTNS8w4KuKfmzbu5kkmee43b4i3OmaSSX1tAOUX0Nb/jwEYVQPWkfhaC
NhzAalkaVG3XXTIL2m4OqOjBnVP8DTDhGUdSqkBWnpz64ljzl5cGR/bm3iP3ME/B
kT40taS9gFcix3GaBSVXqvNsIIEckxy+hp7rjuig538rn5bY96+7yWM5C+EgGPia
Z2BYg3FFay29/Nkb4Z2aLUSXsPYNXjjWcCTSpuGP8QKBgQD9laOiHGOnJb/S5O0f
XrldA1GXRdtwNvCWwGJ/V5YBdvOYOqZ4PSHc/y1EroA3RwcMARL2Gq65wImJsgEF
Weq3g0pGiSNm3/GwdaM52eMY55foQsDGS7KOyNuDz4IQ4Ffz1LjantiWVA2tt22L
W0tJEQBT/yJSuSbJK11CSt0q8QKBgQDICqpWWBlaWwrVUyv9LucZ2Xa2ciq/dXXu
RVisMEO2WbIwdvppVaRHQH3IGQWIi6DNd9ejbmfdGctfzeXAEeiemjeMEc1hm+cL
mwRfPZ+P+ISwPI52IJTuy3mP+FYva8cX6l3NKtrIi5G7mE9b0ZLrGKhlfpu0FQMp
GaAH0btFaQKBgQDipmyq6FTpgIQDKzoFX9Stndm/K2EG2xQOqcVfrBkXFgqDdWh0
767kp+7+BDn1LjbOM+eOsCqbO8uylrby4Xs4qtAoW0qZGHAdGAfcHTMtf1H29jL3
CZF+rWgGV+IY02vJM8hFHtTXCClxqxDuDZsso1V3vgIfjf1ssKWaKu+jAQKBgQCD
1wumto+XDnPYXuWaCySC0+E6o4nq/4ZHEGs9qN2nu/wFlxS5AZmw4B9GFr+f266S
XI7Bhs1rWknAjZoDeYofpbJAXadH0pF3A6bhAmM8ZuVEpdSapCSkMXSf32MmA9mG
uI8z3i+thtb4lYyQDlLPIUQzCDukd0jK+LmRDbhoKQKBgQDX59GWIlVVQybAR3Yy
z6MweBYXkdM3H8s/RJ4WA/DSsvPRcpkvSKpA+JpIBhKiEFbL4HYLe+CSFbFaPBma
b3vQDk4/rFrl+9pk6mIYpcwKRb5GL2M6hR/OlAvJsBY7EfzerPCrQ2pSx7bT6f02
KsH5M8Vut9xMvOps+wDtFOBDLQ==
-----END PRIVATE KEY-----
";

pub const RSA_PUBLIC_PEM: &str = r"-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxid4afC2Iyc62dE6rWxq
jWo5tf/9RbJ+xBw697y4P6hxwM07OfGqMJHi++o9EhsAti0I3zgAy51g8x5yeSwI
I1D1rMrx9CgX3yZbF71MXLgZLSrHWpbH54y8BzIJbNuq3rF0pRWQUBKlkEq7DFa2
J3uDZpzAl35MB8dulPwKL89p8B1qEp0i4eUXeEpybTqy3Ww/IK/KuSvZ8Wq9uk8k
CyqehTPl29QOk10e6q3TSR6N6bnIXlaAFhiVes65jfMi6vZoJC6opHZzrAKcrA1f
i9o2TqP9vIBWkVu8H/PG5ifd9fvB31eTgJqMrDsfEXQAJjQEfL7nu9iC4yqScFSR
2QIDAQAB
-----END PUBLIC KEY-----
";

pub const RSA_N: &str = "xid4afC2Iyc62dE6rWxqjWo5tf_9RbJ-xBw697y4P6hxwM07OfGqMJHi--o9EhsAti0I3zgAy51g8x5yeSwII1D1rMrx9CgX3yZbF71MXLgZLSrHWpbH54y8BzIJbNuq3rF0pRWQUBKlkEq7DFa2J3uDZpzAl35MB8dulPwKL89p8B1qEp0i4eUXeEpybTqy3Ww_IK_KuSvZ8Wq9uk8kCyqehTPl29QOk10e6q3TSR6N6bnIXlaAFhiVes65jfMi6vZoJC6opHZzrAKcrA1fi9o2TqP9vIBWkVu8H_PG5ifd9fvB31eTgJqMrDsfEXQAJjQEfL7nu9iC4yqScFSR2Q";
pub const RSA_E: &str = "AQAB";

pub const EC_PRIVATE_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0AjQWT5vthJZB4HT
ilhSbDOFNCvW4MfroBO/mf/irJahRANCAAS5/yyEDj/4Eg7MHKh78smU3hk0ux/Z
SrllskjYhl0E3ZpLrtK6HN0PMd7bKEu9IZTaNK32XpxtFHrEEIvm8iIo
-----END PRIVATE KEY-----
";

pub const EC_X: &str = "uf8shA4_-BIOzByoe_LJlN4ZNLsf2Uq5ZbJI2IZdBN0";
pub const EC_Y: &str = "mkuu0roc3Q8x3tsoS70hlNo0rfZenG0UesQQi-byIig";

pub const EC384_PRIVATE_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDA769qPPcsXEB6rUnwQ
6sNWoP3jbGFp4Ao386+KyFCcW73UXhRzfcXnLOGx8c1iuG+hZANiAAQ9dYccEkX7
rOp8fQFbI4feuhe6IZ79H8AfG20B2g7SsxU7h40aaCCspqjaBJyWgMqqwB5chf9j
jy8iJLPpZWyb0IUgwD9OjhdkMQ40p2l6Q7uk5hdNL2FYjdVw9osyI2A=
-----END PRIVATE KEY-----
";

pub const EC384_X: &str = "PXWHHBJF-6zqfH0BWyOH3roXuiGe_R_AHxttAdoO0rMVO4eNGmggrKao2gScloDK";
pub const EC384_Y: &str = "qsAeXIX_Y48vIiSz6WVsm9CFIMA_To4XZDEONKdpekO7pOYXTS9hWI3VcPaLMiNg";

pub const HMAC_SECRET: &[u8] = b"test-hmac-secret-of-32-bytes-at-least!";

/// A JWKS with the RSA key as `rsa1`, the P-256 key as `ec1` and the P-384 key as `ec384`.
pub fn jwks() -> String {
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": RSA_N, "e": RSA_E},
        {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": EC_X, "y": EC_Y},
        {"kty": "EC", "kid": "ec384", "crv": "P-384", "x": EC384_X, "y": EC384_Y},
    ]})
    .to_string()
}

/// Signs `claims` with `alg` and `kid`, picking the matching private test key.
pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap()
        }
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap(),
        Algorithm::ES384 => EncodingKey::from_ec_pem(EC384_PRIVATE_PEM.as_bytes()).unwrap(),
        _ => EncodingKey::from_secret(HMAC_SECRET),
    };
    sign_with(alg, kid, claims, &key)
}

pub fn sign_with(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}
