//! `GET /openapi.json`: the schema a GPT imports, built from every component's GPT actions
//! ([`super::GPT_ACTIONS`]; each action's contract sits in the module of its handler), so any
//! component can serve the whole schema. Browser routes and pages stay out.

use serde_json::{Map, Value, json};

use super::{Ctx, Failure, GPT_ACTIONS, Request, Response};
use crate::settings::Settings;

pub fn document(ctx: &Ctx<'_>, _: &Request, _: &str) -> Result<Response, Failure> {
    Ok(Response::json(200, &schema(ctx.settings)))
}

/// What `Email::parse` accepts, as an ECMA-262 pattern: a local part of at most 64 characters
/// from the RFC 5322 atom set (dots not leading, trailing or doubled) and a dotted domain of
/// letters, digits and inner hyphens whose last label has a letter. The schema and the server
/// agree on every address, so a client never sends one it thinks valid and gets a 422.
pub const EMAIL_PATTERN: &str = "^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";
/// No control characters (Unicode Cc), as `Passphrase::parse` requires.
pub const PASSPHRASE_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// A response documented with the shared error body.
/// What a PIN looks like: digits, the first not 0, of a length in `Pin::LENGTHS`.
pub fn pin_pattern() -> String {
    let lengths = crate::domain::Pin::LENGTHS;
    format!("^[1-9][0-9]{{{},{}}}$", lengths.start() - 1, lengths.end() - 1)
}

pub fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The answers every GPT action can give besides its own: the guard's and the store's.
/// A GPT action's operation object: what `/openapi.json` shows and MCP's `tools/list` reads
/// (its request schema through [`request_schema`]). `consequential`: ChatGPT asks the user first.
pub struct OperationDoc<'a> {
    pub id: &'a str,
    pub summary: &'a str,
    pub description: &'a str,
    pub consequential: bool,
    /// The JSON body's schema.
    pub request: Value,
    pub responses: Map<String, Value>,
}

impl OperationDoc<'_> {
    pub fn build(self) -> Value {
        json!({
            "operationId": self.id,
            "summary": self.summary,
            "description": self.description,
            "x-openai-isConsequential": self.consequential,
            "requestBody": {"required": true, "content": {"application/json": {"schema": self.request}}},
            "responses": self.responses
        })
    }
}

/// The request body's schema of an operation built by [`OperationDoc::build`].
pub fn request_schema(operation: &Value) -> Value {
    operation["requestBody"]["content"]["application/json"]["schema"].clone()
}

/// A success answer: a JSON object whose `fields` are all required strings.
pub fn object_response(description: &str, fields: &[&str]) -> Value {
    let properties: Map<String, Value> = fields.iter().map(|f| ((*f).to_owned(), json!({"type": "string"}))).collect();
    json!({"description": description, "content": {"application/json": {"schema": {
        "type": "object", "required": fields, "properties": properties
    }}}})
}

/// The errors every GPT action may answer, 422 included.
pub fn gpt_action_errors() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("422".into(), error_response("Invalid input; field names the problem."));
    m.insert("400".into(), error_response("The body is not a JSON object."));
    m.insert("401".into(), error_response("Service API key missing or wrong (WWW-Authenticate: Bearer)."));
    m.insert("403".into(), error_response("No service API key is configured on the server."));
    m.insert("413".into(), error_response("The body is larger than 64 KiB."));
    m.insert("415".into(), error_response("The body is not sent as application/json."));
    m.insert("429".into(), error_response("RATE_LIMITED: too many calls from this key or client; retry after Retry-After seconds."));
    m.insert("503".into(), error_response("Temporarily unavailable or busy; retry later (see Retry-After)."));
    m
}

pub fn schema(settings: &Settings) -> Value {
    let mut paths = Map::new();
    for action in GPT_ACTIONS.iter().chain(super::oauth::actions::PERSON_ACTIONS) {
        let item = paths.entry(action.path).or_insert_with(|| json!({}));
        item[action.method.to_ascii_lowercase()] = (action.operation)(settings);
    }
    let base = &settings.base_url;
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "gpt-user",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "User accounts created and managed from a chat: sign-up with email verification and a public PIN plus a passphrase; profile changes by an emailed link."
        },
        "servers": [{"url": settings.base_url}],
        "paths": paths,
        "components": {
            // The service key for the account actions; a person's OAuth sign-in (SPEC §2.5) for
            // `whoAmI` and `requestProfileLink` (each names its scheme). A GPT takes one kind of
            // authentication for all its actions: see the README for which actions to keep.
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "oauth2": {"type": "oauth2", "flows": {"authorizationCode": {
                    "authorizationUrl": format!("{base}/oauth/authorize"),
                    "tokenUrl": format!("{base}/oauth/token"),
                    "refreshUrl": format!("{base}/oauth/token"),
                    "scopes": {super::oauth::SCOPE: "Act as the signed-in person: read their account, email them a profile link."}
                }}}
            },
            "schemas": {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Audience, COMPONENT_ROUTES};

    #[test]
    fn every_gpt_action_is_in_the_schema_once_with_an_operation_id_and_nothing_else_is() {
        let doc = schema(&Settings::default());
        let mut ids = Vec::new();
        for route in COMPONENT_ROUTES.iter().flat_map(|r| r.iter()) {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            // The MCP endpoint is guarded like a GPT action but is not one.
            if route.audience == Audience::Gpt && route.path != crate::api::mcp::PATH {
                assert_eq!(GPT_ACTIONS.iter().filter(|a| a.path == route.path && a.method == route.method).count(), 1, "{} is one GPT action", route.path);
                ids.push(op["operationId"].as_str().expect("an operationId").to_owned());
                assert!(op["x-openai-isConsequential"].is_boolean(), "{}: consequential is decided", route.path);
                assert!(op["responses"]["401"].is_object(), "{}: the guard's answers are listed", route.path);
            } else if route.audience == Audience::Person {
                // The person's actions (SPEC §2.5): under the oauth2 scheme, not the service key.
                assert_eq!(op["security"], json!([{"oauth2": ["account"]}]), "{}", route.path);
                ids.push(op["operationId"].as_str().expect("an operationId").to_owned());
            } else {
                assert!(op.is_null(), "{} is not a GPT action", route.path);
            }
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(ids.len(), unique.len(), "operationIds are unique: {ids:?}");
        assert!(!ids.is_empty());
        // …and every GPT action is served by some component.
        let served = |a: &crate::api::Action| {
            COMPONENT_ROUTES.iter().flat_map(|r| r.iter()).any(|r| r.audience == Audience::Gpt && r.path == a.path && r.method == a.method)
        };
        assert!(GPT_ACTIONS.iter().all(served), "an action in /openapi.json that no component serves");
        assert_eq!(ids.len(), GPT_ACTIONS.len() + crate::api::oauth::actions::PERSON_ACTIONS.len());
        let flows = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
        assert_eq!(flows["tokenUrl"], format!("{}/oauth/token", Settings::default().base_url));
    }
}
