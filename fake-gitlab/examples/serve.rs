//! Runs the fake GitLab until Ctrl-C, for manual poking with curl.
//!
//! `cargo run -p fake-gitlab --example serve [PATH_PREFIX]`

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let opts = fake_gitlab::FakeOptions {
        path_prefix: std::env::args().nth(1).unwrap_or_default(),
        ..fake_gitlab::FakeOptions::default()
    };
    let gitlab = fake_gitlab::FakeGitlab::start(opts).await?;
    println!("fake GitLab listening at {}", gitlab.base_url());
    println!("token: {}", gitlab.token());
    tokio::signal::ctrl_c().await?;
    println!("{} requests received", gitlab.requests().len());
    gitlab.shutdown().await;
    Ok(())
}
