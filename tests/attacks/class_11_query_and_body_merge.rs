//! Threat class 11 (docs/threat-model.md): query and body parameters, merged.

use crate::harness::*;
use crate::support::sandbox::SandboxOptions;

/// Query and body (JSON or form) are merged and checked together, as GitLab
/// merges them: a name sent twice (across or within sources) is refused,
/// nested forms are refused, lists are checked element by element and never
/// empty, unknown content types on write rules get 415. Legitimate lists,
/// encodings and merges reach GitLab byte for byte.
fn class_11() -> Vec<Row> {
    let put = || req("PUT", MR);
    let q = |query: &str| req("PUT", &format!("{MR}?{query}"));
    let hooks_q = |query: &str| req("POST", &format!("{HOOKS}?{query}"));
    let many: String = (0..=256).map(|i| format!("p{i}=1&")).collect();
    vec![
        // Duplicates across the query and the body.
        q("add_labels=echoes/a").json(r#"{"add_labels":"echoes/b"}"#).refused(400, DUPLICATE),
        q("add_labels=echoes/a").form("add_labels=echoes/b").refused(400, DUPLICATE),
        q("add_labels[]=echoes/a").json(r#"{"add_labels":["echoes/b"]}"#).refused(400, DUPLICATE),
        q("remove_labels[]=echoes/a").form("remove_labels[]=echoes/b").refused(400, DUPLICATE),
        hooks_q("url=https://evil.example/").json(HOOK_JSON).refused(400, DUPLICATE),
        hooks_q("url=https://api.echoeshq.com/h")
            .json(r#"{"url":"https://evil.example/"}"#)
            .refused(400, DUPLICATE),
        hooks_q("enable_ssl_verification=false").json(HOOK_JSON).refused(403, INVALID),
        hooks_q("enable_ssl_verification=true")
            .json(r#"{"url":"https://api.echoeshq.com/h","enable_ssl_verification":"true"}"#)
            .refused(400, DUPLICATE),
        q("title=pwned").json(LABELS_JSON).refused(403, UNKNOWN),
        q("state_event=close").form("add_labels=echoes/a").refused(403, UNKNOWN),
        // Duplicates within one source.
        put().json(r#"{"add_labels":"echoes/a","add_labels":"bug"}"#).refused(400, DUPLICATE),
        put().json(r#"{"add_labels":"bug","add_labels":"echoes/a"}"#).refused(400, DUPLICATE),
        put().form("add_labels=echoes/a&add_labels=bug").refused(400, DUPLICATE),
        put().form("add_labels[]=echoes/a&add_labels=bug").refused(400, DUPLICATE),
        q("add_labels=echoes/a&add_labels=echoes/b").refused(400, DUPLICATE),
        get("/api/v4/projects/101/merge_requests?state=opened&state=closed").refused(400, DUPLICATE),
        get("/api/v4/projects/101/merge_requests?labels[]=a&labels=b").refused(400, DUPLICATE),
        // Nested forms.
        put().form("add_labels[x]=echoes/a").refused(400, MALFORMED),
        q("add_labels[x]=echoes/a").refused(400, AMB),
        get("/api/v4/groups?a[b]=1").refused(400, AMB),
        get("/api/v4/groups?a[][b]=1").refused(400, AMB),
        get("/api/v4/groups?a[]b=1").refused(400, AMB),
        get("/api/v4/groups?a]=1").refused(400, AMB),
        get("/api/v4/groups?a%5Bb%5D=1").refused(400, AMB),
        put().form("add_labels%5Bx%5D=echoes/a").refused(400, MALFORMED),
        put().json(r#"{"add_labels[]":"echoes/a"}"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":{"a":"echoes/x"}}"#).refused(403, INVALID),
        put().json(r#"{"add_labels":[{"a":"echoes/x"}]}"#).refused(403, INVALID),
        put().json(r#"{"add_labels":[["echoes/x"]]}"#).refused(403, INVALID),
        put().json(r#"["add_labels"]"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":"echoes/a"}x"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":"echoes/a"}{"title":"x"}"#).refused(400, MALFORMED),
        put().json(r#"{"add_labels":"echoes/a","#).refused(400, MALFORMED),
        // `labels` replaces the whole set: `labels=` would clear every label.
        // What a non-empty set may change is decided against the merge
        // request's current labels, read by glgate first (`changes_only`):
        // tests/e2e/clients.rs labels_replacing_the_set_may_change_only_echoes_labels.
        put().form("labels=").refused(403, INVALID),
        // Empty and mixed lists.
        put().json(r#"{"add_labels":""}"#).refused(403, INVALID),
        put().json(r#"{"remove_labels":[]}"#).refused(403, INVALID),
        put().json(r#"{"add_labels":null}"#).refused(403, INVALID),
        put().form("add_labels=").refused(403, INVALID),
        put().form("add_labels=,").refused(403, INVALID),
        put().form("remove_labels[]=").refused(403, INVALID),
        put().json(r#"{"add_labels":"echoes/a,bug"}"#).refused(403, INVALID),
        put().form("add_labels=echoes/a%2Cbug").refused(403, INVALID),
        put().json(r#"{"remove_labels":["echoes/a","bug"]}"#).refused(403, INVALID),
        put().json(r#"{"Add_Labels":"echoes/a"}"#).refused(403, UNKNOWN),
        put().json(r#"{"add_labels ":"echoes/a"}"#).refused(403, UNKNOWN),
        // Content types on write rules.
        put().body(Some("text/plain"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put()
            .body(
                Some("multipart/form-data; boundary=x"),
                b"--x\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\npwned\r\n--x--\r\n",
            )
            .refused(415, MEDIA),
        put().body(Some("application/json; charset=latin1"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put().body(None, LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put().body(Some("application/xml"), b"<add_labels>echoes/a</add_labels>").refused(415, MEDIA),
        put().body(Some("application/vnd.api+json"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put().body(Some("application/json-patch+json"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        put()
            .body(Some("application/x-www-form-urlencoded; charset=utf-16"), b"add_labels=echoes/a")
            .refused(415, MEDIA),
        put().body(Some("application/json; boundary=x"), LABELS_JSON.as_bytes()).refused(415, MEDIA),
        req("POST", GROUP_LABELS)
            .body(
                Some("multipart/form-data; boundary=x"),
                b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\necho/x\r\n--x--\r\n",
            )
            .refused(415, MEDIA),
        put()
            .body(Some("application/x-www-form-urlencoded"), LABELS_JSON.as_bytes())
            .refused(403, UNKNOWN),
        put().json("add_labels=echoes/a").refused(400, MALFORMED),
        // Bodies where the rule takes none, or no such parameter.
        get("/api/v4/projects/101/merge_requests")
            .json(r#"{"state":"all"}"#)
            .refused(403, NO_BODY),
        req("DELETE", "/api/v4/projects/101/hooks/9001").json(r#"{"x":1}"#).refused(403, UNKNOWN),
        req("DELETE", "/api/v4/groups/acme/labels/echoes%2Fx?name=echoes/y").refused(403, UNKNOWN),
        req("POST", GROUP_LABELS).form("name=echoes%2Fno-color").refused(403, MISSING),
        req("POST", HOOKS).json("{}").refused(403, MISSING),
        get(&format!("/api/v4/groups?{many}")).refused(400, TOO_MANY),
        // Allowed.
        put().form("add_labels[]=echoes%2Fa&add_labels[]=echoes%2Fb").ok(200),
        put().json(r#"{"remove_labels":["echoes/a","echoes/b"]}"#).ok(200),
        put()
            .json(r#"{"add_labels":"echoes/intent: feature, echoes/effort: S"}"#)
            .ok(200),
        q("add_labels=echoes%2Fa").ok(200),
        q("add_labels=echoes%2Fa").json(r#"{"remove_labels":"echoes/b"}"#).ok(200),
        put().form("add%5Flabels=echoes%2Fa").ok(200),
        put().form("add_labels%5B%5D=echoes%2Fa").ok(200),
        put().form("add_labels=echoes%2Fintent%3A+feature&").ok(200),
        put().body(Some("APPLICATION/JSON"), LABELS_JSON.as_bytes()).ok(200),
        put().body(Some("application/json ; charset=\"UTF-8\""), LABELS_JSON.as_bytes()).ok(200),
        put()
            .body(Some("application/x-www-form-urlencoded; charset=utf-8"), b"add_labels=echoes%2Fa")
            .ok(200),
        put().header("Content-Type", "application/json").ok(400),
        req("POST", HOOKS)
            .json(r#"{"url":"https://api.echoeshq.com/hooks/1","token":"s3cret","push_events":true,"enable_ssl_verification":true}"#)
            .ok(201),
        hooks_q("url=https%3A%2F%2Fapi.echoeshq.com%2Fq")
            .json(r#"{"merge_requests_events":true}"#)
            .ok(201),
        get("/api/v4/projects/101/merge_requests?labels[]=bug&labels[]=x").ok(200),
        get("/api/v4/projects/101/merge_requests?state=opened&State=closed").ok(200),
    ]
}

#[tokio::test]
async fn class_11_query_and_body_merge() {
    let tables = |_: &Env| Tables {
        rows: class_11(),
        ..Tables::default()
    };
    run_class(
        "class 11",
        SandboxOptions::default(),
        tables,
        (79, 0, 0),
        158,
    )
    .await;
}
