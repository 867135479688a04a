//! The email-change flow records (`email_changes`, migration 4): the read and the operations of
//! `apply` that write them, for [`crate::store`].

use gpt_user_core::ports::{EmailChange, EmailChangeState, StoreError, Timestamp};

use crate::{Conn, Row};

const COLUMNS: &str = "id, user_id, state, new_email, code_ref, sends, last_send_at, window_ends_at, created_at, expires_at, version";

pub async fn find<C: Conn>(conn: &mut C, id: &str) -> Result<Option<EmailChange>, StoreError> {
    let rows = conn.query(&format!("SELECT {COLUMNS} FROM email_changes WHERE id = $1"), vec![id.into()]).await?;
    rows.first().map(from_row).transpose()
}

/// A new flow; the user's other flows go, so only the newest one answers.
pub async fn start<C: Conn>(conn: &mut C, f: EmailChange) -> Result<(), StoreError> {
    conn.execute("DELETE FROM email_changes WHERE user_id = $1", vec![f.user_id.as_str().into()]).await?;
    conn.execute(&format!("INSERT INTO email_changes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"), vec![
        f.id.into(),
        f.user_id.into(),
        f.state.as_str().into(),
        f.new_email.into(),
        f.code_ref.into(),
        i64::from(f.sends).into(),
        f.last_send_at.into(),
        f.window_ends_at.into(),
        f.created_at.into(),
        f.expires_at.into(),
        i64::from(f.version).into(),
    ])
    .await
}

/// Writes the flow's new values if the stored row is still at the version the step read; the
/// `RETURNING` row tells whether it was (`NotFound` otherwise).
pub async fn update<C: Conn>(conn: &mut C, f: EmailChange) -> Result<(), StoreError> {
    let rows = conn
        .query(
            "UPDATE email_changes SET state = $1, new_email = $2, code_ref = $3, sends = $4, last_send_at = $5, \
             window_ends_at = $6, version = version + 1 WHERE id = $7 AND version = $8 RETURNING id",
            vec![
                f.state.as_str().into(),
                f.new_email.into(),
                f.code_ref.into(),
                i64::from(f.sends).into(),
                f.last_send_at.into(),
                f.window_ends_at.into(),
                f.id.into(),
                i64::from(f.version).into(),
            ],
        )
        .await?;
    if rows.is_empty() { Err(StoreError::NotFound) } else { Ok(()) }
}

/// An active user's new address, verified; the unique index `users_email_key` refuses an address
/// another account has (`conflict("email")`), also one taken by a concurrent transaction.
pub async fn change_email<C: Conn>(conn: &mut C, user_id: &str, email: &str, now: Timestamp) -> Result<(), StoreError> {
    let rows = conn
        .query(
            "UPDATE users SET email = $1, email_verified = 1, updated_at = $2 WHERE id = $3 AND status = 'active' RETURNING id",
            vec![email.into(), now.into(), user_id.into()],
        )
        .await?;
    if rows.is_empty() { Err(StoreError::NotFound) } else { Ok(()) }
}

fn from_row<R: Row>(r: &R) -> Result<EmailChange, StoreError> {
    let state = r.text(2)?;
    let state = EmailChangeState::parse(&state).ok_or_else(|| StoreError::Other(format!("unknown email-change state {state:?}")))?;
    let count = |i| r.int(i).and_then(|n| u32::try_from(n).map_err(|_| StoreError::Other("count out of range".into())));
    Ok(EmailChange {
        id: r.text(0)?,
        user_id: r.text(1)?,
        state,
        new_email: r.opt_text(3)?,
        code_ref: r.text(4)?,
        sends: count(5)?,
        last_send_at: r.int(6)?,
        window_ends_at: r.opt_int(7)?,
        created_at: r.int(8)?,
        expires_at: r.int(9)?,
        version: count(10)?,
    })
}
