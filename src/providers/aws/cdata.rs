//! An HTTP client for Route 53 that rewrites `<![CDATA[...]]>` sections of responses into
//! escaped text. Some emulators (moto) send record values as CDATA, which the SDK's XML
//! decoder skips, so values would read back empty. Real Route 53 sends plain text, which
//! passes through unchanged; Route 53 responses are small, so buffering them costs nothing.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// Wraps an HTTP client so responses have their CDATA sections unwrapped.
#[derive(Debug)]
pub(super) struct CdataClient(pub(super) SharedHttpClient);

impl HttpClient for CdataClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CdataConnector(self.0.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct CdataConnector(SharedHttpConnector);

impl HttpConnector for CdataConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let call = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let mut resp = call.await?;
            let bytes = take_body(&mut resp).await?;
            let fixed = unwrap_cdata(&bytes);
            resp.headers_mut()
                .insert("content-length", fixed.len().to_string());
            *resp.body_mut() = SdkBody::from(fixed);
            Ok(resp)
        })
    }
}

/// Reads a response's whole body, leaving it empty (for small answers only).
pub(super) async fn take_body(resp: &mut HttpResponse) -> Result<Vec<u8>, ConnectorError> {
    let body = std::mem::replace(resp.body_mut(), SdkBody::empty());
    Ok(ByteStream::new(body)
        .collect()
        .await
        .map_err(|e| ConnectorError::io(e.into()))?
        .to_vec())
}

/// The text with every CDATA section replaced by its XML-escaped content.
fn unwrap_cdata(bytes: &[u8]) -> Vec<u8> {
    const OPEN: &[u8] = b"<![CDATA[";
    const CLOSE: &[u8] = b"]]>";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(start) = find(rest, OPEN) {
        let Some(len) = find(&rest[start + OPEN.len()..], CLOSE) else {
            break;
        };
        out.extend_from_slice(&rest[..start]);
        for &b in &rest[start + OPEN.len()..start + OPEN.len() + len] {
            match b {
                b'&' => out.extend_from_slice(b"&amp;"),
                b'<' => out.extend_from_slice(b"&lt;"),
                b'>' => out.extend_from_slice(b"&gt;"),
                other => out.push(other),
            }
        }
        rest = &rest[start + OPEN.len() + len + CLOSE.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::unwrap_cdata;

    #[test]
    fn unwraps_and_escapes() {
        let x = b"<Value><![CDATA[\"v=spf1 a&b <x>\"]]></Value><V>plain</V>";
        assert_eq!(
            String::from_utf8(unwrap_cdata(x)).unwrap(),
            "<Value>\"v=spf1 a&amp;b &lt;x&gt;\"</Value><V>plain</V>"
        );
        assert_eq!(unwrap_cdata(b"no cdata"), b"no cdata");
    }
}
