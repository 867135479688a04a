//! How records are printed: an aligned table with a header row, `key  value` lines for one
//! record, or JSON lines. A record is its ordered fields, so the table columns and the JSON keys
//! are one list.

use std::io::Write as _;

use serde_json::Value;

/// A record: `(key, value)` in column order.
pub type Fields = Vec<(&'static str, Value)>;

/// One JSON object, keys in field order.
pub fn json_line(fields: &Fields) -> String {
    let members: Vec<String> = fields.iter().map(|(key, value)| format!("{}:{value}", Value::from(*key))).collect();
    format!("{{{}}}", members.join(","))
}

/// A record as a JSON object to nest in another record (its keys in serde_json's order, sorted).
pub fn object(fields: &Fields) -> Value {
    Value::Object(fields.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect())
}

/// A header row of `columns` and one row per record, each column as wide as its widest cell,
/// two spaces apart; no trailing spaces.
pub fn table(columns: &[&str], records: &[Fields]) -> String {
    let rows: Vec<Vec<String>> = std::iter::once(columns.iter().map(|c| (*c).to_owned()).collect())
        .chain(records.iter().map(|r| r.iter().map(|(_, v)| cell(v)).collect()))
        .collect();
    let widths: Vec<usize> =
        (0..columns.len()).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    rows.iter().map(|row| aligned(row, &widths)).collect()
}

/// `key  value` lines, the keys padded to the longest.
pub fn key_values(fields: &Fields) -> String {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    fields.iter().map(|(key, value)| aligned(&[(*key).to_owned(), cell(value)], &[width, 0])).collect()
}

/// Records as a table (with `columns`) or JSON lines.
pub fn records(json: bool, columns: &[&str], records: &[Fields]) -> String {
    if json { records.iter().map(|r| json_line(r) + "\n").collect() } else { table(columns, records) }
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub fn print(text: &str) -> anyhow::Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn aligned(row: &[String], widths: &[usize]) -> String {
    let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
    line.join("  ").trim_end().to_owned() + "\n"
}

/// A value as a cell: text as is (control characters, which would break the line, as spaces),
/// `null` as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rows() -> Vec<Fields> {
        vec![
            vec![("pin", json!("123456")), ("email", json!("ann@example.com")), ("reason", Value::Null)],
            vec![("pin", json!("98765432")), ("email", json!("b@x.io")), ("reason", json!("spam\nagain"))],
        ]
    }

    #[test]
    fn a_table_aligns_its_columns_under_a_header() {
        assert_eq!(
            table(&["pin", "email", "reason"], &rows()),
            "pin       email            reason\n\
             123456    ann@example.com  -\n\
             98765432  b@x.io           spam again\n"
        );
        assert_eq!(table(&["pin", "email"], &[]), "pin  email\n", "no records: the header alone");
    }

    #[test]
    fn json_lines_keep_the_field_order_and_parse() {
        let out = records(true, &[], &rows());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], r#"{"pin":"123456","email":"ann@example.com","reason":null}"#);
        let second: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["reason"], "spam\nagain");
    }

    #[test]
    fn key_values_pad_the_keys() {
        let fields = vec![("pin", json!("123456")), ("open_tokens", json!(2)), ("email_verified", json!(true))];
        assert_eq!(key_values(&fields), "pin             123456\nopen_tokens     2\nemail_verified  true\n");
    }
}
