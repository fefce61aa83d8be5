//! GraphiQL that works without the internet: the page the GraphQL endpoint
//! serves to browsers in the dev profile, and everything it loads (React,
//! ReactDOM, GraphiQL and the page's start-up script) built into the binary
//! from `assets/graphiql/` (its README says which versions, from where, and
//! how to update them) and served by the BFF itself under
//! `/graphiql/assets/`.
//!
//! The page's Content-Security-Policy allows scripts, styles and requests
//! to the BFF only, and every file it loads carries a subresource-integrity
//! hash that the build script computes from the very bytes served. A file's
//! name carries a hash of its bytes too, so it is cached for good; the page
//! itself is revalidated. Files worth compressing are gzipped at build time
//! and sent gzipped to clients that accept it.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// Where the assets are served, relative to the site's root; the page
/// refers to them relative to its own URL (`/graphql`), so it also works
/// behind a proxy that serves the BFF under a path prefix.
const ASSETS_DIR: &str = "graphiql/assets";

/// The page runs the BFF's own scripts and styles only; GraphiQL's
/// stylesheet embeds its fonts and icons as `data:` URLs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A file's name changes with its bytes (see the module docs).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One file served under `/graphiql/assets/`.
#[derive(Debug)]
pub(super) struct Asset {
    /// File name with a hash of its bytes (`graphiql.min.<hash>.js`).
    name: &'static str,
    content_type: &'static str,
    /// `sha384-…` of `plain`, for the page's `integrity` attributes.
    integrity: &'static str,
    plain: &'static [u8],
    /// `plain` gzipped, when that is much smaller.
    gzip: Option<&'static [u8]>,
}

// `ASSETS`, in the order the page loads them (build.rs).
include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));

static PAGE: LazyLock<String> = LazyLock::new(render_page);

/// The GraphiQL page, with its security headers.
pub(super) fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            // It names the current assets: ask again each time.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

fn render_page() -> String {
    let mut styles = String::new();
    let mut scripts = String::new();
    for asset in &ASSETS {
        let (name, integrity) = (asset.name, asset.integrity);
        if asset.content_type.starts_with("text/css") {
            styles.push_str(&format!(
                "  <link rel=\"stylesheet\" href=\"{ASSETS_DIR}/{name}\" integrity=\"{integrity}\">\n"
            ));
        } else {
            scripts.push_str(&format!(
                "  <script src=\"{ASSETS_DIR}/{name}\" integrity=\"{integrity}\"></script>\n"
            ));
        }
    }
    // The empty icon spares a request for `/favicon.ico`, which 404s.
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
         <title>GraphiQL</title>\n  \
         <link rel=\"icon\" href=\"data:,\">\n{styles}</head>\n<body>\n  \
         <div id=\"graphiql\">Loading GraphiQL…</div>\n{scripts}</body>\n</html>\n"
    )
}

/// The assets' route, to merge into a BFF's router (only where the
/// endpoint serves the page; see `GraphQlEndpoint::graphiql_routes`).
pub(super) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new().route(&format!("/{ASSETS_DIR}/{{file}}"), get(asset))
}

/// Whether `path` is one of the assets' (the rate limit lets them through:
/// one page load fetches them all at once).
pub(crate) fn is_asset_path(path: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|path| path.strip_prefix(ASSETS_DIR))
        .is_some_and(|file| file.starts_with('/'))
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let gzipped = asset.gzip.filter(|_| accepts_gzip(&headers));
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from(gzipped.unwrap_or(asset.plain)),
    )
        .into_response();
    let response_headers = response.headers_mut();
    if asset.gzip.is_some() {
        response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if gzipped.is_some() {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` lists gzip without refusing it (`q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .any(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0));
            (name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip")) && !refused
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn encoding(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        for accepted in [
            "gzip",
            "gzip, deflate, br, zstd",
            "br;q=1.0, GZIP;q=0.5",
            "x-gzip",
        ] {
            assert!(accepts_gzip(&encoding(accepted)), "{accepted}");
        }
        for refused in [
            "",
            "br",
            "identity",
            "gzip;q=0",
            "gzip; q=0.0, br",
            "gzipped",
        ] {
            assert!(!accepts_gzip(&encoding(refused)), "{refused}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    /// The build script's hashes are of the bytes served: recomputed here
    /// with another implementation (ring), and the gzipped copies unpack to
    /// those same bytes.
    #[test]
    fn integrity_and_names_match_the_embedded_bytes() {
        use base64::Engine as _;
        use std::io::Read as _;

        for asset in &ASSETS {
            let digest = ring::digest::digest(&ring::digest::SHA384, asset.plain);
            let expected = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
            assert_eq!(
                asset.integrity,
                format!("sha384-{expected}"),
                "{}",
                asset.name
            );
            let hash: String = digest.as_ref()[..6]
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            assert!(asset.name.contains(&format!(".{hash}.")), "{}", asset.name);
            if let Some(gzip) = asset.gzip {
                let mut unpacked = Vec::new();
                flate2::read::GzDecoder::new(gzip)
                    .read_to_end(&mut unpacked)
                    .unwrap();
                assert!(unpacked == asset.plain, "{}", asset.name);
                assert!(gzip.len() < asset.plain.len());
            }
        }
        // The big script is worth compressing.
        assert!(ASSETS.iter().any(|asset| asset.gzip.is_some()));
    }

    #[test]
    fn the_page_loads_every_asset_with_its_integrity_and_nothing_else() {
        let page = render_page();
        for asset in &ASSETS {
            assert!(
                page.contains(&format!(
                    "{ASSETS_DIR}/{}\" integrity=\"{}\"",
                    asset.name, asset.integrity
                )),
                "{page}"
            );
        }
        assert!(
            !page.contains("http:") && !page.contains("https:"),
            "{page}"
        );
        // No inline script or style: the policy would block it.
        assert_eq!(
            page.matches("<script").count(),
            page.matches("<script src=").count()
        );
        assert!(
            !page.contains("<style") && !page.contains("style="),
            "{page}"
        );
    }

    #[test]
    fn asset_paths_are_recognised_exactly() {
        assert!(is_asset_path(
            "/graphiql/assets/graphiql.min.0123456789ab.js"
        ));
        assert!(is_asset_path("/graphiql/assets/"));
        for other in [
            "/graphql",
            "/graphiql/assetsx",
            "/graphiql",
            "graphiql/assets/x",
            "/x/graphiql/assets/y",
        ] {
            assert!(!is_asset_path(other), "{other}");
        }
    }
}
