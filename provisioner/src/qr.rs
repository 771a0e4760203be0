//! QR codes for token enrolment (PNG, SVG, terminal text), drawn by `rampart_core::qr` so the
//! `rampart` CLI draws the same images without linking the provisioner.

pub use rampart_core::qr::*;
