//! `GET /openapi.json`: the schema a GPT imports. GPT actions only; browser routes stay out.

use serde_json::{Value, json};

use super::{Ctx, Failure, Request, Response};
use crate::settings::Settings;

pub fn document(ctx: &Ctx<'_>, _: &Request, _: &str) -> Result<Response, Failure> {
    Ok(Response::json(200, &schema(ctx.settings)))
}

/// What `Email::parse` accepts, as an ECMA-262 pattern: a local part of at most 64 characters
/// from the RFC 5322 atom set (dots not leading, trailing or doubled) and a dotted domain of
/// letters, digits and inner hyphens whose last label has a letter. The schema and the server
/// agree on every address, so a client never sends one it thinks valid and gets a 422.
const EMAIL_PATTERN: &str = "^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";
/// No control characters (Unicode Cc), as `Passphrase::parse` requires.
const PASSPHRASE_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

pub fn schema(settings: &Settings) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gpt-user",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "User accounts created and managed from a chat: sign-up with email verification and a public PIN plus a passphrase."
        },
        "servers": [{"url": settings.base_url}],
        "paths": {
            "/api/signup/init": {
                "post": {
                    "operationId": "signUpInit",
                    "summary": "Start a sign-up",
                    "description": "Registers an account with the user's email, consent, locale and passphrase (15-256 characters). Returns the public PIN; the user must open the verification link sent by email. Never repeat the passphrase back.",
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "additionalProperties": false,
                            "required": ["email", "consent", "locale", "passphrase"],
                            "properties": {
                                "email": {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN, "description": "The user's email address."},
                                "consent": {"type": "boolean", "const": true, "description": "True only if the user agreed to the processing of personal data (see /privacy); without it there is no sign-up."},
                                "locale": {"type": "string", "enum": ["en", "ru"], "description": "Language for emails and pages."},
                                "passphrase": {"type": "string", "minLength": settings.passphrase_min, "maxLength": settings.passphrase_max, "pattern": PASSPHRASE_PATTERN, "description": "Secret phrase the user will give with the PIN to prove the account is theirs."}
                            }
                        }}}
                    },
                    "responses": {
                        "201": {"description": "Pending account created; PIN returned, verification email sent.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignUpCreated"}}}},
                        "200": {"description": "Accepted (privacy mode): the outcome is in the email.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignUpAccepted"}}}},
                        "400": error_response("The body is not a JSON object."),
                        "401": error_response("Service API key missing or wrong (WWW-Authenticate: Bearer)."),
                        "403": error_response("No service API key is configured on the server."),
                        "409": error_response("The email already has an account; body has recovery_url."),
                        "413": error_response("The body is larger than 64 KiB."),
                        "415": error_response("The body is not sent as application/json."),
                        "422": error_response("Invalid input or consent not given; field names the problem."),
                        "429": error_response("Too many emails to this address; see Retry-After."),
                        "503": error_response("Temporarily unavailable or busy; retry later (see Retry-After).")
                    }
                }
            }
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "SignUpCreated": {"type": "object", "required": ["pin", "status", "message", "instructions"], "properties": {
                    "pin": {"type": "string"}, "status": {"type": "string"},
                    "message": {"type": "string"}, "instructions": {"type": "string"}
                }},
                "SignUpAccepted": {"type": "object", "required": ["status", "message", "instructions"], "properties": {
                    "status": {"type": "string"}, "message": {"type": "string"}, "instructions": {"type": "string"}
                }},
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "instructions": {"type": "string"}, "field": {"type": "string"},
                    "recovery_url": {"type": "string"}
                }}
            }
        },
        "security": [{"apiKey": []}]
    })
}
