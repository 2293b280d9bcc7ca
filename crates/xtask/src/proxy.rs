//! The local router: one port that mirrors the production load balancer. A request goes to
//! the service whose route is the longest prefix of its path on whole segments (`/api` and
//! `/api/...` to the api, `/apiary` not); the service owning `/` gets everything else.
//!
//! A small reverse proxy: method, path, query, headers (except hop-by-hop ones) and body
//! are forwarded unchanged, bodies streamed both ways; `X-Forwarded-*` are added like a
//! load balancer does.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::output;

/// One service behind the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Service name (for error messages).
    pub name: String,
    /// Path prefix, e.g. `/api`, or `/` for the default service.
    pub prefix: String,
    /// Where the service listens.
    pub upstream: SocketAddr,
}

/// The routes, longest prefix first.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        Self { routes }
    }

    /// Routes of every service of the catalog, at `127.0.0.1:<port>` (`port_of(name)`).
    pub fn from_catalog(catalog: &catalog::Catalog, port_of: impl Fn(&str) -> u16) -> Self {
        Self::from_catalog_at(catalog, IpAddr::from([127, 0, 0, 1]), port_of)
    }

    /// Routes of every service of the catalog, at `host:<port>` (`port_of(name)`).
    pub fn from_catalog_at(
        catalog: &catalog::Catalog,
        host: IpAddr,
        port_of: impl Fn(&str) -> u16,
    ) -> Self {
        Self::new(
            catalog
                .services
                .iter()
                .map(|(name, service)| Route {
                    name: name.clone(),
                    prefix: service.route.clone(),
                    upstream: SocketAddr::from((host, port_of(name))),
                })
                .collect(),
        )
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route a request for `path` goes to.
    pub fn pick(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|route| prefix_matches(&route.prefix, path))
    }
}

/// Whole-segment prefix match: `/api` matches `/api` and `/api/x`, not `/apiary`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[derive(Clone)]
struct ProxyState {
    table: Arc<RouteTable>,
    client: Client<HttpConnector, Body>,
}

/// The proxy as an axum router (serve it with connect info, see [`serve`]).
pub fn router(table: RouteTable) -> Router {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    Router::new().fallback(proxy).with_state(ProxyState {
        table: Arc::new(table),
        client,
    })
}

/// Serves the proxy on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    table: RouteTable,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(table).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn proxy(State(state): State<ProxyState>, request: Request) -> Response {
    let path = request.uri().path();
    let Some(route) = state.table.pick(path) else {
        return (StatusCode::NOT_FOUND, "router: no service owns this path\n").into_response();
    };
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let uri = match Uri::try_from(format!("http://{}{path_and_query}", route.upstream)) {
        Ok(uri) => uri,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("router: bad request target: {e}\n"),
            )
                .into_response();
        }
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    remove_hop_by_hop(&mut parts.headers);
    add_forwarded(&mut parts.headers, peer);
    parts.uri = uri;
    // hyper speaks HTTP/1.1 to the upstream whatever the client used.
    parts.version = axum::http::Version::HTTP_11;
    let upstream_request = Request::from_parts(parts, body);

    match state.client.request(upstream_request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            let message = format!(
                "router: {} ({}) is not reachable: {e}",
                route.name, route.upstream
            );
            output::prefixed("router", &message);
            (StatusCode::BAD_GATEWAY, format!("{message}\n")).into_response()
        }
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // hyper frames the body itself (from Content-Length or chunked).
    headers.remove(header::TRANSFER_ENCODING);
}

fn add_forwarded(headers: &mut HeaderMap, peer: Option<SocketAddr>) {
    if let Some(peer) = peer {
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(existing) => format!("{existing}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert("x-forwarded-for", value);
        }
    }
    headers
        .entry("x-forwarded-proto")
        .or_insert(HeaderValue::from_static("http"));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.entry("x-forwarded-host").or_insert(host);
    }
}
