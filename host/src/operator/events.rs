//! `gpt-user events`: the audit trail (`gpt_user_sql::audit`), oldest first; `--erase` deletes an
//! account's trail for an erasure request that asks for it.

use anyhow::anyhow;
use gpt_user_core::api::time::{parse_date, rfc3339};
use gpt_user_core::audit::{Kind, email_hash};
use gpt_user_core::ports::Event;
use gpt_user_sql::audit::{self, EventFilter};
use serde_json::{Value, json};

use super::output::{self, Fields};
use super::users::Who;
use super::{Common, open, store_error};
use crate::clock::system_now_ms;

/// The audit trail: who did what to which account, and when.
#[derive(clap::Args, Debug)]
pub struct Events {
    #[command(flatten)]
    common: Common,
    /// One account: its email address (also finds a deleted account's events, and those of any
    /// account that had the address) or its PIN.
    #[arg(long, value_name = "EMAIL|PIN")]
    user: Option<String>,
    /// From this day on (`YYYY-MM-DD`, UTC) or the last N days (`Nd`).
    #[arg(long, value_name = "DATE|Nd")]
    since: Option<String>,
    /// Only events of this kind (account-created, account-verified, ...).
    #[arg(long, value_name = "KIND")]
    kind: Option<String>,
    /// The newest N events, shown oldest first.
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: u32,
    /// Deletes every event of `--user` instead of listing them (an erasure request that asks for
    /// the trail too). Asks first unless `--yes`.
    #[arg(long, requires = "user")]
    erase: bool,
    #[arg(long, requires = "erase")]
    yes: bool,
}

const COLUMNS: [&str; 8] = ["at", "kind", "actor", "user_id", "email_hash", "client", "request_id", "detail"];

pub async fn events(args: Events) -> anyhow::Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let kind = args.kind.as_deref().map(|k| Kind::parse(k).ok_or_else(|| unknown_kind(k))).transpose()?;
    let store = open(&args.common).await?;
    // The account's id (if it exists) and the address's hash (if given as an address).
    let (user_id, hash) = match args.user.as_deref() {
        None => (None, None),
        Some(arg) => {
            let who = Who::parse(arg)?;
            let account = store.with_conn(async |c| who.find(c).await).await.map_err(store_error)?;
            match (&who, account) {
                (_, Some(account)) => (Some(account.id), Some(email_hash(&account.email))),
                (Who::Email(email), None) => (None, Some(email_hash(email.as_str()))),
                (Who::Pin(_), None) => return Err(who.unknown()),
            }
        }
    };
    if args.erase {
        if !args.yes && !super::confirm(&format!("Delete every audit event of {}?", args.user.as_deref().unwrap_or_default()))? {
            anyhow::bail!("not erased");
        }
        let erased = store.transaction(async |c| audit::erase(c, user_id.as_deref(), hash.as_deref()).await).await.map_err(store_error)?;
        return output::print(&if args.common.json { output::json_line(&vec![("erased", json!(erased))]) + "\n" } else { format!("erased {erased} events\n") });
    }
    let filter = EventFilter { user_id, email_hash: hash, since, kind, limit: args.limit.into() };
    let events = store.with_conn(async |c| audit::list(c, &filter).await).await.map_err(store_error)?;
    let records: Vec<Fields> = events.iter().map(fields).collect();
    output::print(&output::records(args.common.json, &COLUMNS, &records))
}

fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Some(days) = s.strip_suffix('d').and_then(|d| d.parse::<i64>().ok()).filter(|d| (0..=36_500).contains(d)) {
        return Ok(system_now_ms() - days * 86_400_000);
    }
    parse_date(s).ok_or_else(|| anyhow!("--since takes a date YYYY-MM-DD or a number of days such as 30d, not {s:?}"))
}

fn unknown_kind(k: &str) -> anyhow::Error {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    anyhow!("unknown event kind {k:?}: one of {}", kinds.join(", "))
}

fn fields(e: &Event) -> Fields {
    let opt = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| json!(s));
    vec![
        ("at", json!(rfc3339(e.at))),
        ("kind", json!(e.kind)),
        ("actor", json!(e.actor.as_str())),
        ("user_id", json!(e.user_id)),
        ("email_hash", json!(e.email_hash)),
        ("client", opt(&e.client)),
        ("request_id", opt(&e.request_id)),
        ("detail", opt(&e.detail)),
    ]
}
