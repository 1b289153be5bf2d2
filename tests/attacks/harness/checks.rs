//! The checks every exchange goes through: the client's answer, what GitLab
//! received, and leaks.

use fake_gitlab::RecordedRequest;

use super::answer::Answer;
use super::env::{Env, contains};
use super::headers::UPSTREAM_HEADERS;
use super::rows::{Fwd, Want};

/// Leaks: no secret anywhere, no upstream address in a header, no cookie.
pub fn check_leaks(env: &Env, answer: &Answer) -> Result<(), String> {
    let headers = answer.header_text();
    for secret in &env.secrets {
        if headers.contains(secret.as_str()) || contains(&answer.body, secret.as_bytes()) {
            return Err(format!("answer reveals a secret ({secret:.12}…)"));
        }
    }
    if headers.contains(&env.fake_addr) {
        return Err(format!("a header reveals the upstream address:\n{headers}"));
    }
    if answer.header("set-cookie").is_some() {
        return Err("Set-Cookie reached the client".into());
    }
    Ok(())
}

/// The client's answer against `want`.
pub fn check_answer(
    env: &Env,
    want: &Want,
    outcome: &Result<Answer, String>,
    is_head: bool,
) -> Result<(), String> {
    if let Ok(answer) = outcome {
        check_leaks(env, answer)?;
    }
    let from_glgate = |answer: &Answer| -> Result<(), String> {
        if !answer.opaque && answer.header("x-request-id").is_none() {
            return Err(format!(
                "no x-request-id: not glgate's answer: {}",
                answer.summary()
            ));
        }
        Ok(())
    };
    match want {
        Want::Protocol => match outcome {
            Err(_) => Ok(()),
            Ok(answer)
                if answer.status == 400
                    && (answer.opaque || answer.header("x-request-id").is_none())
                    && !contains(&answer.body, b"glgate") =>
            {
                Ok(())
            }
            Ok(answer) => Err(format!(
                "expected the HTTP layer to refuse, got {}",
                answer.summary()
            )),
        },
        Want::Refused(status, reason) => {
            let answer = outcome
                .as_ref()
                .map_err(|e| format!("expected {status} {reason}, got no answer: {e}"))?;
            if answer.status != *status {
                return Err(format!(
                    "expected {status} {reason}, got {}",
                    answer.summary()
                ));
            }
            from_glgate(answer)?;
            if contains(&answer.body, env.fake_addr.as_bytes()) {
                return Err("the refusal names the upstream address".into());
            }
            if is_head {
                return Ok(());
            }
            let json: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|_| format!("refusal is not JSON: {}", answer.summary()))?;
            if json["reason"] != *reason {
                return Err(format!("expected reason {reason}, got {json}"));
            }
            let message = json["message"].as_str().unwrap_or_default();
            if !message.starts_with(&status.to_string()) || !message.contains(" - glgate: ") {
                return Err(format!("unexpected message shape: {json}"));
            }
            Ok(())
        }
        Want::Local(status) | Want::Forwarded(status, _) => {
            let answer = outcome
                .as_ref()
                .map_err(|e| format!("expected {status}, got no answer: {e}"))?;
            if answer.status != *status {
                return Err(format!("expected {status}, got {}", answer.summary()));
            }
            from_glgate(answer)
        }
    }
}

/// What GitLab received against what it must receive.
pub fn check_recorded(
    env: &Env,
    expected: &Fwd,
    got: &RecordedRequest,
    answer: Option<&Answer>,
) -> Result<(), String> {
    let fail = |what: String| Err(format!("{what}; GitLab received {got:?}"));
    if got.method != expected.method {
        return fail(format!("method: expected {}", expected.method));
    }
    if got.target != expected.target {
        return fail(format!("target: expected {}", expected.target));
    }
    if got.body != expected.body {
        return fail(format!(
            "body: expected {:?}",
            String::from_utf8_lossy(&expected.body)
        ));
    }
    if got.header("private-token") != Some(env.gitlab_token.as_str()) {
        return fail("private-token is not glgate's GitLab token".into());
    }
    if got.header("host") != Some(env.fake_addr.as_str()) {
        return fail("Host is not pinned to GitLab's".into());
    }
    if let Some((name, _)) = got
        .headers
        .iter()
        .find(|(n, _)| !UPSTREAM_HEADERS.contains(&n.as_str()))
    {
        return fail(format!("header '{name}' is not on the allowlist"));
    }
    if got.header("content-type") != expected.content_type.as_deref() {
        return fail(format!(
            "content-type: expected {:?}",
            expected.content_type
        ));
    }
    if !expected.body.is_empty()
        && got.header("content-length") != Some(expected.body.len().to_string().as_str())
    {
        return fail("content-length is not the body's exact length".into());
    }
    if format!("{got:?}").contains(&env.client_token) {
        return fail("the client token reached GitLab".into());
    }
    if let Some(id) = answer.and_then(|a| a.header("x-request-id"))
        && got.header("x-request-id") != Some(id)
    {
        return fail(format!("x-request-id: expected glgate's {id}"));
    }
    Ok(())
}
