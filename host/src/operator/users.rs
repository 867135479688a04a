//! `gpt-user users {list,show,block,unblock,delete,revoke-grants}`.

use anyhow::anyhow;
use gpt_user_core::api::time::rfc3339;
use gpt_user_core::domain::{Email, Pin};
use gpt_user_core::ports::{StoreError, UserStatus};
use gpt_user_sql::oauth::{self, GrantEntry};
use gpt_user_sql::operator::{self as sql, Account, AccountDetails, AccountFilter};
use gpt_user_sql::store::UserKey;
use serde_json::{Value, json};

use super::output::{self, Fields};
use super::{Common, open, store_error};
use crate::clock::system_now_ms;

/// Accounts: list, show, block, unblock, delete, revoke OAuth grants.
#[derive(clap::Args, Debug)]
pub struct Users {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(clap::Subcommand, Debug)]
enum UsersCommand {
    /// Accounts, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Only addresses containing this (case-insensitive).
        #[arg(long, value_name = "TEXT")]
        email_like: Option<String>,
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
    /// One account with its open tokens, queued mail, failed checks and OAuth grants.
    Show {
        /// The account's email address or PIN.
        #[arg(value_name = "EMAIL|PIN")]
        account: String,
    },
    /// Blocks the account and revokes its tokens, at once on every runtime sharing the database.
    Block {
        #[arg(value_name = "EMAIL|PIN")]
        account: String,
        /// Why (shown by `users show` and `users list`).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Lifts a block: active again if the address was verified, else pending.
    Unblock {
        #[arg(value_name = "EMAIL|PIN")]
        account: String,
    },
    /// Deletes the account with its tokens, queued mail and failed-check count.
    Delete {
        #[arg(value_name = "EMAIL|PIN")]
        account: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Revokes every OAuth grant of the account with its tokens: each chat connected as it must
    /// be authorized again.
    RevokeGrants {
        #[arg(value_name = "EMAIL|PIN")]
        account: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Status {
    Pending,
    Active,
    Blocked,
}

impl From<Status> for UserStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => Self::Pending,
            Status::Active => Self::Active,
            Status::Blocked => Self::Blocked,
        }
    }
}

const LIST_COLUMNS: [&str; 7] = ["pin", "email", "status", "email_verified", "locale", "created_at", "blocked_reason"];
const GRANT_COLUMNS: [&str; 7] = ["client_id", "client_name", "resource", "scope", "created_at", "live_refresh_tokens", "live_access_tokens"];

pub async fn users(Users { common, command }: Users) -> anyhow::Result<()> {
    match command {
        UsersCommand::List { status, email_like, limit } => {
            let store = open(&common).await?;
            let filter = AccountFilter { status: status.map(Into::into), email_like, limit: limit.into() };
            let accounts = store.with_conn(async |c| sql::list_accounts(c, &filter).await).await.map_err(store_error)?;
            let records: Vec<Fields> = accounts.iter().map(list_fields).collect();
            output::print(&output::records(common.json, &LIST_COLUMNS, &records))
        }
        UsersCommand::Show { account } => {
            let who = Who::parse(&account)?;
            let store = open(&common).await?;
            let now = system_now_ms();
            let (details, grants) = store
                .with_conn(async |c| match who.find(c).await? {
                    Some(account) => {
                        let grants = oauth::list_user_grants(c, &account.id, now).await?;
                        Ok(Some((sql::details(c, account, now).await?, grants)))
                    }
                    None => Ok(None),
                })
                .await
                .map_err(store_error)?
                .ok_or_else(|| who.unknown())?;
            let grants: Vec<Fields> = grants.iter().map(grant_fields).collect();
            let mut fields = show_fields(&details);
            output::print(&if common.json {
                fields.push(("oauth_grants", Value::Array(grants.iter().map(output::object).collect())));
                output::json_line(&fields) + "\n"
            } else {
                // The count among the account's lines, then the grants as a table of their own.
                fields.push(("oauth_grants", json!(grants.len())));
                let table = if grants.is_empty() { String::new() } else { format!("\n{}", output::table(&GRANT_COLUMNS, &grants)) };
                output::key_values(&fields) + &table
            })
        }
        UsersCommand::Block { account, reason } => {
            let who = Who::parse(&account)?;
            let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
            let store = open(&common).await?;
            let now = system_now_ms();
            let (account, revoked) = store
                .transaction(async |c| match who.find(c).await? {
                    Some(account) => Ok(Some((sql::block(c, &account, reason.as_deref(), now).await?, account))),
                    None => Ok(None),
                })
                .await
                .map_err(store_error)?
                .map(|(revoked, account)| (account, revoked))
                .ok_or_else(|| who.unknown())?;
            output::print(&if common.json {
                output::json_line(&vec![
                    ("pin", json!(account.pin)),
                    ("email", json!(account.email)),
                    ("status", json!(UserStatus::Blocked.as_str())),
                    ("revoked_tokens", json!(revoked)),
                ]) + "\n"
            } else {
                format!("blocked {} (PIN {}); revoked {revoked} tokens\n", account.email, account.pin)
            })
        }
        UsersCommand::Unblock { account } => {
            let who = Who::parse(&account)?;
            let store = open(&common).await?;
            let now = system_now_ms();
            let (account, status) = store
                .transaction(async |c| match who.find(c).await? {
                    Some(account) => Ok(Some((sql::unblock(c, &account, now).await?, account))),
                    None => Ok(None),
                })
                .await
                .map_err(store_error)?
                .map(|(status, account)| (account, status))
                .ok_or_else(|| who.unknown())?;
            let status = status.ok_or_else(|| anyhow!("account {} is not blocked", account.email))?;
            output::print(&if common.json {
                output::json_line(&vec![("pin", json!(account.pin)), ("email", json!(account.email)), ("status", json!(status.as_str()))]) + "\n"
            } else {
                format!("unblocked {} (PIN {}): {}\n", account.email, account.pin, status.as_str())
            })
        }
        UsersCommand::Delete { account, yes } => {
            let who = Who::parse(&account)?;
            let store = open(&common).await?;
            let account = store.with_conn(async |c| who.find(c).await).await.map_err(store_error)?.ok_or_else(|| who.unknown())?;
            if !yes && !super::confirm(&format!("Delete the account {} (PIN {}) with its tokens and queued mail?", account.email, account.pin))? {
                anyhow::bail!("not deleted");
            }
            // Again inside the transaction: what is deleted is the account as it is now.
            let deleted = store
                .transaction(async |c| match sql::find_account(c, UserKey::Id, &account.id).await? {
                    Some(current) => sql::delete(c, &current, system_now_ms()).await.map(|()| Some(current)),
                    None => Ok(None),
                })
                .await
                .map_err(store_error)?
                .ok_or_else(|| who.unknown())?;
            output::print(&if common.json {
                output::json_line(&vec![("pin", json!(deleted.pin)), ("email", json!(deleted.email)), ("deleted", json!(true))]) + "\n"
            } else {
                format!("deleted {} (PIN {})\n", deleted.email, deleted.pin)
            })
        }
        UsersCommand::RevokeGrants { account, yes } => {
            let who = Who::parse(&account)?;
            let store = open(&common).await?;
            let account = store.with_conn(async |c| who.find(c).await).await.map_err(store_error)?.ok_or_else(|| who.unknown())?;
            if !yes && !super::confirm(&format!("Revoke every OAuth grant of {} (PIN {}) with its tokens?", account.email, account.pin))? {
                anyhow::bail!("not revoked");
            }
            // Again inside the transaction, as for `delete`: the account as it is now.
            let (account, revoked) = store
                .transaction(async |c| match sql::find_account(c, UserKey::Id, &account.id).await? {
                    Some(current) => {
                        let revoked = oauth::revoke_user_by_operator(c, &current.id, &current.email, system_now_ms()).await?;
                        Ok(Some((current, revoked)))
                    }
                    None => Ok(None),
                })
                .await
                .map_err(store_error)?
                .ok_or_else(|| who.unknown())?;
            output::print(&if common.json {
                output::json_line(&vec![("pin", json!(account.pin)), ("email", json!(account.email)), ("revoked_grants", json!(revoked))]) + "\n"
            } else {
                format!("revoked {revoked} grants of {} (PIN {})\n", account.email, account.pin)
            })
        }
    }
}

/// The account an argument names: with an `@` an email address, else a PIN.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Who {
    Email(Email),
    Pin(Pin),
}

impl Who {
    pub(super) fn parse(arg: &str) -> anyhow::Result<Self> {
        let parsed = if arg.contains('@') { Email::parse(arg).map(Self::Email) } else { Pin::parse(arg).map(Self::Pin) };
        parsed.map_err(|_| anyhow!("not an email address or PIN: {}", arg.trim()))
    }

    pub(super) async fn find<C: gpt_user_sql::Conn>(&self, conn: &mut C) -> Result<Option<Account>, StoreError> {
        match self {
            Self::Email(email) => sql::find_account(conn, UserKey::Email, email.as_str()).await,
            Self::Pin(pin) => sql::find_account(conn, UserKey::Pin, pin.as_str()).await,
        }
    }

    pub(super) fn unknown(&self) -> anyhow::Error {
        match self {
            Self::Email(email) => anyhow!("no account with email {}", email.as_str()),
            Self::Pin(pin) => anyhow!("no account with PIN {}", pin.as_str()),
        }
    }
}

fn list_fields(a: &Account) -> Fields {
    vec![
        ("pin", json!(a.pin)),
        ("email", json!(a.email)),
        ("status", json!(a.status.as_str())),
        ("email_verified", json!(a.email_verified)),
        ("locale", json!(a.locale)),
        ("created_at", json!(rfc3339(a.created_at))),
        ("blocked_reason", a.blocked_reason.as_ref().map_or(Value::Null, |r| json!(r))),
    ]
}

/// A grant: its client, what for, since when, and whether it still works (a live refresh token
/// keeps the chat connected; a live access token works for up to an hour).
fn grant_fields(g: &GrantEntry) -> Fields {
    vec![
        ("client_id", json!(g.client_id)),
        ("client_name", g.client_name.as_ref().map_or(Value::Null, |n| json!(n))),
        ("resource", json!(g.resource)),
        ("scope", json!(g.scope)),
        ("created_at", json!(rfc3339(g.created_at))),
        ("live_refresh_tokens", json!(g.live_refresh_tokens)),
        ("live_access_tokens", json!(g.live_access_tokens)),
    ]
}

fn show_fields(d: &AccountDetails) -> Fields {
    let mut fields = list_fields(&d.account);
    fields.extend([
        ("updated_at", json!(rfc3339(d.account.updated_at))),
        ("open_tokens", json!(d.open_tokens)),
        ("queued_mail", json!(d.queued_mail)),
        ("auth_failures", json!(d.auth_failures)),
    ]);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_with_an_at_sign_is_an_email_and_digits_are_a_pin() {
        assert_eq!(Who::parse(" Ann@Example.COM ").unwrap(), Who::Email(Email::parse("ann@example.com").unwrap()));
        assert_eq!(Who::parse("123456").unwrap(), Who::Pin(Pin::parse("123456").unwrap()));
        for bad in ["ann", "12", "012345", "12345a", "ann@", "", "1234567890123"] {
            let err = Who::parse(bad).unwrap_err().to_string();
            assert_eq!(err, format!("not an email address or PIN: {}", bad.trim()), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_account_is_named_by_what_was_asked() {
        assert_eq!(Who::parse("ANN@example.com").unwrap().unknown().to_string(), "no account with email ann@example.com");
        assert_eq!(Who::parse("123456").unwrap().unknown().to_string(), "no account with PIN 123456");
    }

    #[test]
    fn the_list_columns_are_the_record_keys() {
        let account = Account {
            id: "id".into(),
            pin: "123456".into(),
            email: "ann@example.com".into(),
            status: UserStatus::Blocked,
            email_verified: true,
            locale: "en".into(),
            created_at: 0,
            updated_at: 1000,
            blocked_reason: None,
        };
        let keys: Vec<&str> = list_fields(&account).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, LIST_COLUMNS);
        let line = output::json_line(&list_fields(&account));
        assert_eq!(
            line,
            r#"{"pin":"123456","email":"ann@example.com","status":"blocked","email_verified":true,"locale":"en","created_at":"1970-01-01T00:00:00Z","blocked_reason":null}"#
        );
    }
}
