//! `glgate probe`: the health probe for containers that have no curl.

use std::process::ExitCode;

use super::exit::{Exit, Flavour, runtime};

/// `glgate probe URL`: GET the URL (plain HTTP, 5 s); exit 0 on a 2xx answer.
pub(super) fn run(url: &str) -> ExitCode {
    let Ok(uri) = url.parse::<http::Uri>() else {
        eprintln!("'{url}' is not a URL");
        return Exit::Error.into();
    };
    let runtime = match runtime(Flavour::CurrentThread) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{error}");
            return Exit::Found.into();
        }
    };
    let status = runtime.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        tokio::time::timeout(std::time::Duration::from_secs(5), client.get(uri)).await
    });
    match status {
        Ok(Ok(response)) if response.status().is_success() => Exit::Ok.into(),
        Ok(Ok(response)) => {
            eprintln!("{url}: {}", response.status());
            Exit::Found.into()
        }
        Ok(Err(error)) => {
            eprintln!("{url}: {}", crate::diagnostic::describe(&error));
            Exit::Found.into()
        }
        Err(_) => {
            eprintln!("{url}: no answer within 5 s");
            Exit::Found.into()
        }
    }
}
