//! The way out: a pooled HTTP/1.1 + HTTP/2 client over rustls, and `upstream.routes`,
//! which send chosen hosts to another address while the request keeps its original
//! `Host` and TLS server name (VPC endpoints; local servers in tests).
//!
//! Routing is done in DNS resolution, below the connection pool: the request URI keeps
//! the real host (so SNI, certificate checks, `Host` and the pool key are all the real
//! name) and only the socket address changes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use http::uri::Scheme;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpStream;

use serde::Deserialize;

use super::ProxyBody;

use crate::hosts::HTTPS_PORT;
use crate::tls::{TlsError, client_config, load_pem_certs};

/// One compiled `upstream.routes` entry.
#[derive(Debug, Clone)]
pub struct Route {
    glob: GlobMatcher,
    pub scheme: Scheme,
    pub addr: SocketAddr,
}

impl Route {
    /// Compile a route; an error names the offending field (`host` or `to`).
    pub fn compile(route: &RouteConfig) -> Result<Route, (&'static str, String)> {
        let pattern = route.host.trim().to_ascii_lowercase();
        if pattern.is_empty() {
            return Err(("host", "is empty".into()));
        }
        let glob = Glob::new(&pattern)
            .map_err(|e| ("host", format!("not a valid glob: {e}")))?
            .compile_matcher();
        let bad_to = |why: &str| {
            (
                "to",
                format!("`{}` {why}; expected http(s)://ip:port", route.to),
            )
        };
        let uri: http::Uri = route.to.parse().map_err(|_| bad_to("is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::HTTPS,
            Some("http") => Scheme::HTTP,
            _ => return Err(bad_to("has no http or https scheme")),
        };
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(bad_to("has a path"));
        }
        let authority = uri.authority().ok_or_else(|| bad_to("has no address"))?;
        let port = authority.port_u16().ok_or_else(|| bad_to("has no port"))?;
        let ip = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad_to("does not name an IP address"))?;
        Ok(Route {
            glob,
            scheme,
            addr: SocketAddr::new(ip, port),
        })
    }

    pub fn matches(&self, host: &str) -> bool {
        self.glob.is_match(host)
    }
}

/// The compiled routes, shared by the resolver and the tunnel.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<[Route]>);

impl Routes {
    pub fn compile(routes: &[RouteConfig]) -> Result<Self, String> {
        let compiled = routes
            .iter()
            .map(|r| {
                Route::compile(r).map_err(|(field, e)| format!("route {}: {field} {e}", r.host))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Routes(compiled.into()))
    }

    /// The first route whose glob matches `host`.
    pub fn find(&self, host: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.matches(host))
    }
}

/// A DNS resolver that answers routed hosts with their route's address (port included:
/// upstream URIs carry no explicit port, so the connector keeps the resolved one).
#[derive(Debug, Clone)]
pub struct RouteResolver {
    routes: Routes,
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for RouteResolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let routed = self.routes.find(name.as_str()).map(|r| r.addr);
        Box::pin(async move {
            match routed {
                Some(addr) => Ok(vec![addr].into_iter()),
                None => {
                    let addrs: Vec<SocketAddr> =
                        tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
                    Ok(addrs.into_iter())
                }
            }
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<RouteResolver>>;

/// The pooled client and the routing table.
pub struct Upstream {
    client: Client<Connector, ProxyBody>,
    routes: Routes,
    connect_timeout: Duration,
    pub response_timeout: Duration,
}

impl Upstream {
    pub fn new(
        config: &UpstreamConfig,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Self, TlsError> {
        let extra = match ca_file {
            Some(path) => load_pem_certs(path)?,
            None => Vec::new(),
        };
        let routes = Routes::compile(&config.routes).map_err(|message| TlsError::Bad {
            path: "upstream.routes".into(),
            message,
        })?;
        let mut http = HttpConnector::new_with_resolver(RouteResolver {
            routes: routes.clone(),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config(&extra)?)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .build(https);
        Ok(Upstream {
            client,
            routes,
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
        })
    }

    /// The scheme to use toward `host`: a route's, else HTTPS.
    pub fn scheme_for(&self, host: &str) -> Scheme {
        self.routes
            .find(host)
            .map_or(Scheme::HTTPS, |r| r.scheme.clone())
    }

    /// Send `request` (absolute URI, original `Host`); resolves at the response head.
    pub async fn send(
        &self,
        request: http::Request<ProxyBody>,
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }

    /// A raw TCP connection for a tunnelled host: its route's address, else DNS on 443.
    pub async fn connect_tunnel(&self, host: &str) -> std::io::Result<TcpStream> {
        let connect = async {
            let stream = match self.routes.find(host) {
                Some(route) => TcpStream::connect(route.addr).await?,
                None => TcpStream::connect((host, HTTPS_PORT)).await?,
            };
            stream.set_nodelay(true)?;
            Ok(stream)
        };
        tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
    }
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for slow control-plane calls (CloudFormation, large S3 copies).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 64;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub routes: Vec<RouteConfig>,
    pub ca_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            routes: Vec::new(),
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
        }
    }
}

/// `{host: "<glob>", to: "https://ip:port"}`: send matching hosts elsewhere, keeping `Host`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub host: String,
    pub to: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, to: &str) -> Result<Route, (&'static str, String)> {
        Route::compile(&RouteConfig {
            host: host.into(),
            to: to.into(),
        })
    }

    #[test]
    fn routes_match_globs_across_dots() {
        let r = route("*.amazonaws.com", "https://127.0.0.1:9443").unwrap();
        assert!(r.matches("sts.amazonaws.com"));
        assert!(r.matches("bucket.s3.us-east-1.amazonaws.com"));
        assert!(!r.matches("googleapis.com"));
        assert_eq!(r.addr, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(r.scheme, Scheme::HTTPS);
    }

    #[test]
    fn route_targets_must_be_ip_and_port() {
        assert_eq!(route("x", "https://example.com:443").unwrap_err().0, "to");
        assert_eq!(route("x", "https://127.0.0.1").unwrap_err().0, "to");
        assert_eq!(route("x", "ftp://127.0.0.1:21").unwrap_err().0, "to");
        assert_eq!(route("x", "http://127.0.0.1:80/path").unwrap_err().0, "to");
        assert_eq!(route("", "http://127.0.0.1:80").unwrap_err().0, "host");
        assert_eq!(route("[", "http://127.0.0.1:80").unwrap_err().0, "host");
        assert!(route("x", "http://[::1]:5000").is_ok());
    }
}
