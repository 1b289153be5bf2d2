//! GitLab offset pagination: `page`/`per_page` and the `X-*` and `Link`
//! response headers.

use http::HeaderName;
use http::header::LINK;
use serde_json::Value;

use super::Ctx;
use crate::params::{Params, percent_encode};
use crate::reply::{Reply, Result};

const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;

/// The requested page of `items` as a `200` JSON array with pagination
/// headers, or `400` for a non-numeric `page`/`per_page`.
pub(crate) fn paginate(ctx: &Ctx<'_>, items: Vec<Value>) -> Reply {
    match page_params(&ctx.params) {
        Ok(window) => page_reply(ctx, items, window),
        Err(reply) => reply,
    }
}

/// Page number (from 1) and page size.
#[derive(Clone, Copy)]
struct Window {
    page: u64,
    per_page: u64,
}

fn page_params(params: &Params) -> Result<Window> {
    let page = int_param(params, "page")?.unwrap_or(1).max(1);
    let per_page = match int_param(params, "per_page")? {
        Some(n) if n >= 1 => n.min(MAX_PER_PAGE),
        _ => DEFAULT_PER_PAGE,
    };
    Ok(Window { page, per_page })
}

/// An integer parameter; negative values count as 0, empty as absent.
fn int_param(params: &Params, key: &str) -> Result<Option<u64>> {
    let Some(text) = params.str(key) else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let n: i64 = text.parse().map_err(|_| Reply::invalid(key))?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

fn page_reply(ctx: &Ctx<'_>, items: Vec<Value>, w: Window) -> Reply {
    let total = items.len() as u64;
    let total_pages = total.div_ceil(w.per_page).max(1);
    let skip = usize::try_from((w.page - 1).saturating_mul(w.per_page)).unwrap_or(usize::MAX);
    let take = usize::try_from(w.per_page).unwrap_or(usize::MAX);
    let body: Vec<Value> = items.into_iter().skip(skip).take(take).collect();
    // Like Kaminari: no prev/next page when out of range.
    let in_range = w.page <= total_pages;
    let prev = (in_range && w.page > 1).then(|| w.page - 1);
    let next = (w.page < total_pages).then(|| w.page + 1);
    let mut links = Vec::new();
    for (rel, page) in [
        ("prev", prev),
        ("next", next),
        ("first", Some(1)),
        ("last", Some(total_pages)),
    ] {
        if let Some(page) = page {
            links.push(format!(
                "<{}>; rel=\"{rel}\"",
                page_url(ctx, page, w.per_page)
            ));
        }
    }
    let text = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    Reply::ok(Value::Array(body))
        .with_header(header("x-page"), w.page.to_string())
        .with_header(header("x-per-page"), w.per_page.to_string())
        .with_header(header("x-next-page"), text(next))
        .with_header(header("x-prev-page"), text(prev))
        .with_header(header("x-total"), total.to_string())
        .with_header(header("x-total-pages"), total_pages.to_string())
        .with_header(LINK, links.join(", "))
}

fn header(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// The absolute URL of `page`: the raw request path, then every query
/// parameter but `page`/`per_page`, plus those two, sorted by key.
fn page_url(ctx: &Ctx<'_>, page: u64, per_page: u64) -> String {
    let mut pairs: Vec<(String, String)> = ctx
        .query
        .iter()
        .filter(|(k, _)| k != "page" && k != "per_page")
        .cloned()
        .collect();
    pairs.push(("page".into(), page.to_string()));
    pairs.push(("per_page".into(), per_page.to_string()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    format!("{}{}?{}", ctx.origin, ctx.raw_path, query.join("&"))
}
