//! Runs the fake GitLab until Ctrl-C, for manual poking with curl and for
//! load tests.
//!
//! `cargo run -p fake-gitlab --example serve [PATH_PREFIX] [--no-record]`
//!
//! `--no-record` keeps no request log, so memory stays flat under load.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let record = !args.iter().any(|a| a == "--no-record");
    let opts = fake_gitlab::FakeOptions {
        path_prefix: args
            .iter()
            .find(|a| !a.starts_with("--"))
            .cloned()
            .unwrap_or_default(),
        ..fake_gitlab::FakeOptions::default()
    };
    let gitlab = fake_gitlab::FakeGitlab::start(opts).await?;
    gitlab.set_recording(record);
    println!("fake GitLab listening at {}", gitlab.base_url());
    println!("token: {}", gitlab.token());
    // The OAuth application docs/try-it.md uses, so `glgate oauth login`
    // can be tried against this stand-in too.
    let (client_id, secret, redirect) = (
        "glgate-try",
        "glgate-try-secret",
        "http://127.0.0.1:7171/callback",
    );
    gitlab.oauth_client(client_id, secret, redirect);
    println!("oauth application: client_id {client_id}, secret {secret}, redirect_uri {redirect}");
    tokio::signal::ctrl_c().await?;
    println!("{} requests received", gitlab.requests().len());
    gitlab.shutdown().await;
    Ok(())
}
