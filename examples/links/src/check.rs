//! Checking a link: a `GET` through the shard's HTTP client, the body
//! streamed and counted (not kept), and what came of it.

use torsion_protocols::http::client::{ClientError, HttpClient};

/// What checking one link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The URL as given.
    pub url: String,
    /// The status, when the server answered.
    pub status: Option<i64>,
    /// The body's length, when it was read to its end.
    pub bytes: Option<i64>,
    /// Why the check failed, as a sentence.
    pub error: Option<String>,
}

/// Checks `url`. A URL the client cannot request at all (not `http://` or
/// `https://`, no host) is an error for the caller to refuse; anything
/// that goes wrong after that is part of the result.
pub async fn check(client: &HttpClient, url: &str) -> Result<Checked, ClientError> {
    let mut checked = Checked {
        url: url.to_string(),
        status: None,
        bytes: None,
        error: None,
    };
    let mut response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e @ (ClientError::InvalidUrl { .. } | ClientError::InvalidHeader(_))) => return Err(e),
        Err(e) => {
            checked.error = Some(e.to_string());
            return Ok(checked);
        }
    };
    checked.status = Some(response.status().as_u16().into());
    let mut bytes = 0i64;
    loop {
        match response.body_mut().chunk().await {
            Ok(Some(piece)) => bytes += piece.len() as i64,
            Ok(None) => {
                checked.bytes = Some(bytes);
                break;
            }
            Err(e) => {
                checked.error = Some(e.to_string());
                break;
            }
        }
    }
    Ok(checked)
}
