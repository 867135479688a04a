//! `gpt-user outbox {list,retry,purge}`: what mail is waiting, failing, sent or dead, without
//! ever a subject or body (a body may hold a live link; a dead message has none left).

use anyhow::anyhow;
use gpt_user_core::api::time::rfc3339;
use gpt_user_sql::operator::{self as sql, MailState, OutboxEntry, Retried};
use serde_json::{Value, json};

use super::output::{self, Fields};
use super::{Common, open, store_error};
use crate::clock::system_now_ms;

const MS_PER_DAY: i64 = 86_400_000;

/// Queued mail: list, retry, purge.
#[derive(clap::Args, Debug)]
pub struct Outbox {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(clap::Subcommand, Debug)]
enum OutboxCommand {
    /// Messages, newest queued first: all, or only pending, failed, sent or dead ones.
    #[command(group(clap::ArgGroup::new("state").args(["failed", "pending", "sent", "dead"])))]
    List {
        /// Not sent, at least one failed attempt, to be tried again.
        #[arg(long)]
        failed: bool,
        /// Not sent, no attempt yet.
        #[arg(long)]
        pending: bool,
        /// Delivered.
        #[arg(long)]
        sent: bool,
        /// Given up: refused for good by the relay (a 5xx reply) or not delivered within 24 h.
        /// Never tried again; the body is wiped, `last_error` says why.
        #[arg(long)]
        dead: bool,
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
    /// Makes an unsent message (or every failed one) due now; a running server sends it within
    /// its poll interval. A dead message cannot be retried: its body is gone.
    #[command(group(clap::ArgGroup::new("which").args(["id", "all_failed"]).required(true)))]
    Retry {
        /// The message's id (from `outbox list`).
        id: Option<String>,
        #[arg(long)]
        all_failed: bool,
    },
    /// Deletes delivered messages sent more than DAYS days ago.
    Purge {
        /// Only delivered mail may be purged; required to say so.
        #[arg(long, required = true)]
        sent: bool,
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
    },
}

const LIST_COLUMNS: [&str; 10] =
    ["id", "recipient", "kind", "state", "attempts", "queued_at", "next_attempt_at", "sent_at", "dead_at", "last_error"];

pub async fn outbox(Outbox { common, command }: Outbox) -> anyhow::Result<()> {
    match command {
        OutboxCommand::List { failed, pending, sent, dead, limit } => {
            let state = [(failed, MailState::Failed), (pending, MailState::Pending), (sent, MailState::Sent), (dead, MailState::Dead)]
                .into_iter()
                .find_map(|(chosen, state)| chosen.then_some(state));
            let store = open(&common).await?;
            let entries =
                store.with_conn(async |c| sql::list_outbox(c, state, limit.into()).await).await.map_err(store_error)?;
            let records: Vec<Fields> = entries.iter().map(fields).collect();
            output::print(&output::records(common.json, &LIST_COLUMNS, &records))
        }
        OutboxCommand::Retry { id, all_failed } => {
            let store = open(&common).await?;
            let now = system_now_ms();
            let n = match (id, all_failed) {
                (Some(id), _) => {
                    let id = id.trim().to_owned();
                    match store.transaction(async |c| sql::retry(c, &id, now).await).await.map_err(store_error)? {
                        Retried::Due => {}
                        Retried::Dead => {
                            return Err(anyhow!(
                                "message {id} is dead (see its last_error in `outbox list --dead`): its body was wiped, so it cannot be sent again; the user can ask for a new link or code"
                            ));
                        }
                        Retried::NotFound => return Err(anyhow!("no unsent message {id}")),
                    }
                    1
                }
                (None, _) => store.transaction(async |c| sql::retry_all_failed(c, now).await).await.map_err(store_error)?,
            };
            output::print(&if common.json { output::json_line(&vec![("retrying", json!(n))]) + "\n" } else { format!("retrying {n} messages\n") })
        }
        OutboxCommand::Purge { sent: _, older_than } => {
            let store = open(&common).await?;
            let before = system_now_ms() - i64::from(older_than) * MS_PER_DAY;
            let n = store.transaction(async |c| sql::purge_sent(c, before).await).await.map_err(store_error)?;
            output::print(&if common.json { output::json_line(&vec![("purged", json!(n))]) + "\n" } else { format!("purged {n} messages\n") })
        }
    }
}

fn fields(e: &OutboxEntry) -> Fields {
    vec![
        ("id", json!(e.id)),
        ("recipient", json!(e.recipient)),
        ("kind", json!(e.kind)),
        ("state", json!(e.state.as_str())),
        ("attempts", json!(e.attempts)),
        ("queued_at", json!(rfc3339(e.queued_at))),
        // A dead message has no next attempt.
        ("next_attempt_at", if e.dead_at.is_some() { Value::Null } else { json!(rfc3339(e.next_attempt_at)) }),
        ("sent_at", e.sent_at.map_or(Value::Null, |t| json!(rfc3339(t)))),
        ("dead_at", e.dead_at.map_or(Value::Null, |t| json!(rfc3339(t)))),
        ("last_error", e.last_error.as_ref().map_or(Value::Null, |t| json!(t))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_columns_are_the_record_keys_and_never_a_body() {
        let entry = OutboxEntry {
            id: "abc".into(),
            recipient: "ann@example.com".into(),
            kind: "signup-verification".into(),
            state: MailState::Failed,
            attempts: 2,
            queued_at: 0,
            next_attempt_at: 60_000,
            sent_at: None,
            dead_at: None,
            last_error: Some("connection refused".into()),
        };
        let keys: Vec<&str> = fields(&entry).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, LIST_COLUMNS);
        let table = output::table(&LIST_COLUMNS, &[fields(&entry)]);
        assert!(
            table.lines().nth(1).unwrap().contains("failed  2         1970-01-01T00:00:00Z  1970-01-01T00:01:00Z  -        -        connection refused"),
            "{table}"
        );
    }
}
