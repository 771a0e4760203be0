//! What a test does with a client and reads from it: answers to logins and resumes, refused
//! and echoed streams, how the gateway closed a connection.

use super::PATIENCE;
use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::protocol::SessionGrant;
use ring::rand::{SecureRandom, SystemRandom};

/// The grant of a login or resume, or the code it was refused with.
pub fn refusal_of(result: Result<SessionGrant, ClientError>) -> Result<SessionGrant, ErrorCode> {
    match result {
        Ok(grant) => Ok(grant),
        Err(ClientError::Refused { code, .. }) => Err(code),
        Err(ClientError::Busy { .. }) => Err(ErrorCode::Busy),
        Err(other) => panic!("expected an answer, got {other}"),
    }
}

/// The refusal of a new stream to `resource`.
pub async fn open_refusal(client: &GatewayClient, resource: &str) -> ErrorCode {
    match client.open(resource).await {
        Err(ClientError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal of {resource}, got {other}"),
        Ok(_) => panic!("{resource} opened"),
    }
}

/// Opens `resource`, sends `data`, and reads the same number of bytes back; the stream stays
/// open.
pub async fn echo_through(
    client: &GatewayClient,
    resource: &str,
    data: &[u8],
) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = client
        .open(resource)
        .await
        .unwrap_or_else(|e| panic!("{resource} refused: {e}"));
    send.write_all(data).await.unwrap();
    let mut back = vec![0u8; data.len()];
    tokio::time::timeout(PATIENCE, recv.read_exact(&mut back))
        .await
        .expect("the echo answered in time")
        .unwrap();
    assert!(back == data, "the echo sent back other bytes");
    (send, recv)
}

/// How the gateway closed `client`'s connection: its application close code and reason.
pub async fn closed_by_gateway(client: &GatewayClient) -> (u64, String) {
    match tokio::time::timeout(PATIENCE, client.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => (
            close.error_code.into_inner(),
            String::from_utf8_lossy(&close.reason).into_owned(),
        ),
        Ok(other) => panic!("the connection ended otherwise: {other}"),
        Err(_) => panic!("the gateway did not close the connection"),
    }
}

/// `count` random bytes.
pub fn random_bytes(count: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; count];
    SystemRandom::new().fill(&mut bytes).unwrap();
    bytes
}
