//! `gpt-user clients {add,list,remove}`: the OAuth clients (SPEC §2.5). `add` makes a confidential
//! client — what a GPT's "OAuth" action authentication needs —, prints its secret once and stores
//! only the secret's SHA-256; `list` and `remove` see every kind (registered, operator, metadata).

use anyhow::anyhow;
use gpt_user_core::api::oauth::{SCOPE, redirect_uri_allowed, sha256_hex};
use gpt_user_core::api::time::rfc3339;
use gpt_user_core::domain::{Token, token_hex};
use gpt_user_core::ports::{ClientKind, OauthClient};
use gpt_user_sql::oauth::{self as sql, ClientEntry};
use serde_json::{Value, json};

use super::output::{self, Fields};
use super::{Common, connect, load, open, store_error};
use crate::clock::system_now_ms;

/// OAuth clients: add (a confidential client with a secret), list, remove.
#[derive(clap::Args, Debug)]
pub struct Clients {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: ClientsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ClientsCommand {
    /// Makes a confidential client (a GPT's OAuth action): prints its id, its secret (once: only
    /// its hash is stored) and the authorization and token URLs.
    Add {
        /// What the consent page calls the client.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Where the client's authorizations return, exactly (ChatGPT's:
        /// https://chatgpt.com/aip/<id>/oauth/callback); repeat for more.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
    },
    /// Clients of every kind, newest first; never a secret.
    List {
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
    /// Deletes a client with every grant made to it and their tokens.
    Remove {
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// What the registration endpoint allows too (`gpt_user_core::api::oauth::register`).
const MAX_NAME: usize = 200;
const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI: usize = 2000;

const LIST_COLUMNS: [&str; 5] = ["client_id", "kind", "name", "redirect_uris", "created_at"];

/// Printed with the secret, the one time it is shown.
const ONCE: &str = "Store the client secret now: it will not be shown again (only its SHA-256 is kept).";

pub async fn clients(Clients { common, command }: Clients) -> anyhow::Result<()> {
    match command {
        ClientsCommand::Add { name, redirect_uris } => add(&common, &name, &redirect_uris).await,
        ClientsCommand::List { limit } => {
            let store = open(&common).await?;
            let clients = store.with_conn(async |c| sql::list_clients(c, limit.into()).await).await.map_err(store_error)?;
            let records: Vec<Fields> = clients.iter().map(|client| list_fields(client, common.json)).collect();
            output::print(&output::records(common.json, &LIST_COLUMNS, &records))
        }
        ClientsCommand::Remove { client_id, yes } => {
            let id = client_id.trim();
            let store = open(&common).await?;
            let client = store.with_conn(async |c| sql::find_client_entry(c, id).await).await.map_err(store_error)?.ok_or_else(|| unknown(id))?;
            let question = format!("Remove the {} client {:?} ({}) and revoke every grant made to it?", client.kind.as_str(), client.name, client.id);
            if !yes && !super::confirm(&question)? {
                anyhow::bail!("not removed");
            }
            let revoked = store
                .transaction(async |c| sql::remove_client(c, &client.id, system_now_ms()).await)
                .await
                .map_err(store_error)?
                .ok_or_else(|| unknown(id))?;
            output::print(&if common.json {
                output::json_line(&vec![("client_id", json!(client.id)), ("removed", json!(true)), ("revoked_grants", json!(revoked))]) + "\n"
            } else {
                format!("removed client {} ({:?}); revoked {revoked} grants\n", client.id, client.name)
            })
        }
    }
}

/// `clients add`: checks what it is given before it touches the database, then stores the client
/// with the hash of a fresh 256-bit secret.
async fn add(common: &Common, name: &str, redirect_uris: &[String]) -> anyhow::Result<()> {
    let name = client_name(name)?;
    let redirect_uris = checked_redirect_uris(redirect_uris)?;
    let config = load(common)?;
    let store = connect(&config).await?;
    let secret = Token::from_random(random::<32>()?);
    let client = OauthClient {
        id: token_hex(&random::<16>()?),
        kind: ClientKind::Operator,
        name,
        redirect_uris,
        secret_hash: Some(sha256_hex(secret.as_str())),
        created_at: system_now_ms(),
        expires_at: None,
    };
    store.transaction(async |c| sql::insert_client(c, client.clone()).await).await.map_err(store_error)?;
    if config.base_url.as_deref().is_none_or(|base| base.trim().is_empty()) {
        eprintln!("warning: base_url is not set, so these URLs name the listen address; set GPT_USER_BASE_URL to the public origin");
    }
    let base = config.base_url();
    let fields: Fields = vec![
        ("client_id", json!(client.id)),
        ("client_secret", json!(secret.as_str())),
        ("name", json!(client.name)),
        ("redirect_uris", uris(&client.redirect_uris, common.json)),
        ("authorization_url", json!(format!("{base}/oauth/authorize"))),
        ("token_url", json!(format!("{base}/oauth/token"))),
        ("scope", json!(SCOPE)),
    ];
    if common.json {
        // stdout stays one JSON object; the warning goes where a person reads it.
        eprintln!("{ONCE}");
        output::print(&(output::json_line(&fields) + "\n"))
    } else {
        output::print(&format!("{}\n{ONCE}\n", output::key_values(&fields)))
    }
}

/// The name, trimmed: 1 to 200 characters, no control characters.
fn client_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        anyhow::bail!("--name must be 1 to {MAX_NAME} characters of text");
    }
    Ok(name.to_owned())
}

/// The redirect URIs, trimmed (they are compared exactly): 1 to 10 of them, each `https`, or
/// `http` on a loopback host, without user info or fragment.
fn checked_redirect_uris(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut uris: Vec<String> = Vec::new();
    for uri in given.iter().map(|u| u.trim()) {
        if uri.len() > MAX_URI || !redirect_uri_allowed(uri) {
            anyhow::bail!("not an allowed redirect URI: {uri} (https, or http on 127.0.0.1, localhost or [::1]; no user info, no fragment)");
        }
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
    }
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        anyhow::bail!("give 1 to {MAX_REDIRECT_URIS} --redirect-uri");
    }
    Ok(uris)
}

/// `N` bytes of the kernel's randomness, as the server's ports draw them (`native.rs`).
fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    use std::io::Read as _;
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).map_err(|e| anyhow!("cannot read /dev/urandom: {e}"))?;
    Ok(buf)
}

fn unknown(id: &str) -> anyhow::Error {
    anyhow!("no client with id {id}")
}

fn list_fields(c: &ClientEntry, json: bool) -> Fields {
    vec![
        ("client_id", json!(c.id)),
        ("kind", json!(c.kind.as_str())),
        ("name", json!(c.name)),
        ("redirect_uris", uris(&c.redirect_uris, json)),
        ("created_at", json!(rfc3339(c.created_at))),
    ]
}

/// A JSON list; in a table, one cell with the URIs space-separated.
fn uris(uris: &[String], json: bool) -> Value {
    if json { json!(uris) } else { json!(uris.join(" ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_trimmed_deduplicated_and_checked() {
        let given = |uris: &[&str]| checked_redirect_uris(&uris.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>());
        let chatgpt = "https://chatgpt.com/aip/g-0123abcd/oauth/callback";
        let padded = format!(" {chatgpt} ");
        assert_eq!(given(&[padded.as_str(), chatgpt, "http://127.0.0.1:5555/cb"]).unwrap(), [chatgpt, "http://127.0.0.1:5555/cb"]);
        for bad in ["http://example.com/cb", "https://u:p@example.com/cb", "https://example.com/cb#x", "chatgpt.com/cb", ""] {
            let err = given(&[bad]).unwrap_err().to_string();
            assert!(err.starts_with("not an allowed redirect URI"), "{bad:?}: {err}");
        }
        assert!(given(&[]).is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("https://example.com/cb{i}")).collect();
        assert!(checked_redirect_uris(&eleven).is_err());
    }

    #[test]
    fn a_name_is_trimmed_text_of_at_most_200_characters() {
        assert_eq!(client_name("  My GPT ").unwrap(), "My GPT");
        for bad in ["", "   ", "a\nb", &"x".repeat(201)] {
            assert!(client_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_list_columns_are_the_record_keys_and_hold_no_secret() {
        let client = ClientEntry {
            id: "c1".into(),
            kind: ClientKind::Operator,
            name: "My GPT".into(),
            redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb".into()],
            created_at: 0,
            expires_at: None,
        };
        let keys: Vec<&str> = list_fields(&client, true).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, LIST_COLUMNS);
        assert_eq!(
            output::json_line(&list_fields(&client, true)),
            r#"{"client_id":"c1","kind":"operator","name":"My GPT","redirect_uris":["https://a.example/cb","https://b.example/cb"],"created_at":"1970-01-01T00:00:00Z"}"#
        );
        assert_eq!(list_fields(&client, false)[3].1, json!("https://a.example/cb https://b.example/cb"));
    }
}
