//! The one body type the gateway passes around: upstream bodies stream
//! through, its own answers are small buffers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// Any error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming or buffered HTTP body.
pub type Body = BoxBody<Bytes, BoxError>;

/// A body holding these bytes.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(b: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    b.map_err(Into::into).boxed()
}
