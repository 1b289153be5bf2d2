//! Running tables: each row over each of its transports against a sandbox,
//! every failure collected, and one report per class.

use crate::support::sandbox::{Sandbox, SandboxOptions};

use super::checks::{check_answer, check_recorded};
use super::env::Env;
use super::h2raw;
use super::headers::COPIED_HEADERS;
use super::raw_rows::{H2Row, RawRow};
use super::rows::{Row, Want};
use super::transports::{exchange_h1, parse_h1, send_h1, send_h2};

/// Runs one row over one transport; an error says what went wrong.
async fn run_row(sb: &Sandbox, env: &Env, row: &Row, version: &str) -> Result<(), String> {
    sb.fake.clear_requests();
    if let Some(before) = row.before {
        before(&sb.fake);
    }
    let outcome = if version == "h1" {
        send_h1(env, row).await
    } else {
        send_h2(env, row).await
    };
    let recorded = sb.fake.requests();
    check_answer(env, &row.want, &outcome, row.method == "HEAD")?;
    let expected = match &row.want {
        Want::Forwarded(_, Some(fwd)) => Some(env.fill_fwd(fwd)),
        Want::Forwarded(_, None) => Some(env.fill_fwd(&row.fwd())),
        _ => None,
    };
    let Some(expected) = expected else {
        if recorded.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "GitLab must receive nothing, received {recorded:?}"
        ));
    };
    let [got] = recorded.as_slice() else {
        return Err(format!(
            "GitLab must receive exactly one request, received {recorded:?}"
        ));
    };
    let answer = outcome.as_ref().ok();
    check_recorded(env, &expected, got, answer)?;
    for name in &row.absent {
        if got.header(name).is_some() {
            return Err(format!("'{name}' reached GitLab: {got:?}"));
        }
    }
    for (name, value) in &row.headers {
        let lower = name.to_ascii_lowercase();
        if COPIED_HEADERS.contains(&lower.as_str())
            && !row.absent.contains(&lower.as_str())
            && got.header(&lower) != Some(env.fill(value).as_str())
        {
            return Err(format!(
                "'{name}: {value}' was not copied to GitLab: {got:?}"
            ));
        }
    }
    if let (Some(check), Some(answer)) = (row.check, answer) {
        check(answer, env)?;
    }
    Ok(())
}

/// Runs every row; returns the number of exchanges.
/// Panics at the end with every failure.
async fn run_rows(sb: &Sandbox, env: &Env, rows: &[Row], failures: &mut Vec<String>) -> usize {
    let mut ran = 0;
    for row in rows.iter() {
        for version in row.versions() {
            ran += 1;
            if let Err(error) = run_row(sb, env, row, version).await {
                failures.push(format!("[{version}] {}\n    {error}", row.describe()));
            }
        }
    }
    ran
}

async fn run_raw(sb: &Sandbox, env: &Env, row: &RawRow) -> Result<(), String> {
    sb.fake.clear_requests();
    let received = exchange_h1(env.proxy, &env.fill_bytes(&row.bytes)).await;
    let answers = parse_h1(&received, &[]);
    let recorded = sb.fake.requests();
    if answers.len() < row.required_count() || answers.len() > row.wants.len() {
        return Err(format!(
            "expected {}..={} answers, got {}: {:?}; GitLab received {recorded:?}",
            row.required_count(),
            row.wants.len(),
            answers.len(),
            String::from_utf8_lossy(&received)
        ));
    }
    let mut expected = Vec::new();
    for (i, (want, answer)) in row.wants.iter().zip(&answers).enumerate() {
        check_answer(env, want, &Ok(answer.clone()), false)
            .map_err(|e| format!("answer {}: {e}", i + 1))?;
        if let Want::Forwarded(_, fwd) = want {
            let fwd = fwd.as_ref().expect("raw rows name what GitLab receives");
            expected.push((env.fill_fwd(fwd), answer));
        }
    }
    if recorded.len() != expected.len() {
        return Err(format!(
            "GitLab must receive {} request(s), received {recorded:?}",
            expected.len()
        ));
    }
    for ((fwd, answer), got) in expected.iter().zip(&recorded) {
        check_recorded(env, fwd, got, Some(*answer))?;
    }
    Ok(())
}

async fn run_raws(sb: &Sandbox, env: &Env, rows: &[RawRow], failures: &mut Vec<String>) -> usize {
    let mut ran = 0;
    for row in rows.iter() {
        ran += 1;
        if let Err(error) = run_raw(sb, env, row).await {
            failures.push(format!(
                "[raw h1] {}: {:?}\n    {error}",
                row.name,
                String::from_utf8_lossy(&row.bytes)
            ));
        }
    }
    ran
}

async fn run_h2raw(sb: &Sandbox, env: &Env, row: &H2Row) -> Result<(), String> {
    sb.fake.clear_requests();
    let headers: Vec<(Vec<u8>, Vec<u8>)> = row
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), env.fill_bytes(v)))
        .collect();
    let data: Vec<Vec<u8>> = row.data.iter().map(|d| env.fill_bytes(d)).collect();
    let outcome = h2raw::exchange(env.proxy, &headers, &data).await;
    let recorded = sb.fake.requests();
    let is_head = row.pseudo(b":method") == "HEAD";
    if let Ok(answer) = &outcome
        && is_head
        && !answer.body.is_empty()
    {
        return Err(format!(
            "the answer to HEAD carries a body: {}",
            answer.summary()
        ));
    }
    check_answer(env, &row.want, &outcome, is_head)?;
    match &row.want {
        Want::Forwarded(_, Some(fwd)) => {
            let [got] = recorded.as_slice() else {
                return Err(format!(
                    "GitLab must receive exactly one request, received {recorded:?}"
                ));
            };
            check_recorded(env, &env.fill_fwd(fwd), got, None)
        }
        _ if recorded.is_empty() => Ok(()),
        _ => Err(format!(
            "GitLab must receive nothing, received {recorded:?}"
        )),
    }
}

async fn run_h2raws(sb: &Sandbox, env: &Env, rows: &[H2Row], failures: &mut Vec<String>) -> usize {
    let mut ran = 0;
    for row in rows.iter() {
        ran += 1;
        if let Err(error) = run_h2raw(sb, env, row).await {
            failures.push(format!("[raw h2] {}\n    {error}", row.name));
        }
    }
    ran
}

fn report(class: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{class}: {} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One class's tables: rows sent over HTTP/1.1 (and HTTP/2 where they can
/// be), raw HTTP/1 exchanges, and hand-written HTTP/2 requests.
#[derive(Default)]
pub struct Tables {
    pub rows: Vec<Row>,
    pub raws: Vec<RawRow>,
    pub h2: Vec<H2Row>,
}

impl Tables {
    /// How many entries each table holds: (rows, raws, h2), so that a row
    /// lost from a table fails the class.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.rows.len(), self.raws.len(), self.h2.len())
    }
}

/// A class's failures and exchanges, gathered over one or more sandboxes.
#[derive(Default)]
pub struct Run {
    failures: Vec<String>,
    ran: usize,
}

impl Run {
    /// Runs every table against `sb`, keeping the failures for the report.
    pub async fn tables(&mut self, sb: &Sandbox, env: &Env, tables: &Tables) {
        self.ran += run_rows(sb, env, &tables.rows, &mut self.failures).await
            + run_raws(sb, env, &tables.raws, &mut self.failures).await
            + run_h2raws(sb, env, &tables.h2, &mut self.failures).await;
    }

    /// Panics with every failure at once, then checks that exactly
    /// `exchanges` exchanges ran (no transport silently skipped).
    pub fn finish(self, class: &str, exchanges: usize) {
        report(class, &self.failures);
        assert_eq!(self.ran, exchanges, "{class} exchanges");
    }
}

/// The test of a class whose tables run against one sandbox: checks the
/// tables' sizes, starts the sandbox with `options`, builds the tables with
/// its environment (`tables`), runs them and reports.
pub async fn run_class(
    class: &str,
    options: SandboxOptions,
    tables: impl FnOnce(&Env) -> Tables,
    sizes: (usize, usize, usize),
    exchanges: usize,
) {
    let sb = Sandbox::with(options).await;
    let env = Env::of(&sb);
    let tables = tables(&env);
    assert_eq!(tables.sizes(), sizes, "{class} tables");
    let mut run = Run::default();
    run.tables(&sb, &env, &tables).await;
    run.finish(class, exchanges);
}
