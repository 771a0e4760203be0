//! QR codes for token enrolment: the same `otpauth://` URI rendered as PNG, SVG or terminal text,
//! always at error-correction level M with the standard 4-module quiet zone. Rendering only, into
//! memory: saving an image is the caller's. Errors never quote the encoded data (it holds a TOTP
//! seed).

use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::render::Renderer;
use qrcode::{Color, EcLevel};

/// Pixels per module edge in PNG (and SVG units). A typical `otpauth` URI needs 41–57 modules,
/// so with the quiet zone the image is about 300–400 px square: large enough for phone cameras
/// from a screen or a printed letter, and about 2.7 KB as a PNG.
pub const MODULE_PX: u32 = 6;

/// Quiet-zone width in modules on every side, as ISO/IEC 18004 requires for normal QR codes.
pub const QUIET_ZONE: u32 = 4;

/// Why a QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The data does not fit in the largest QR code (version 40) at error-correction level M.
    #[error("the data is too long for a QR code ({len} bytes)")]
    TooLong {
        /// Length of the data in bytes (the data itself is never shown).
        len: usize,
    },
    /// The QR encoder refused the data for another reason.
    #[error("cannot encode the QR code: {0}")]
    Encode(qrcode::types::QrError),
    /// The PNG encoder failed (only possible for absurd sizes or an I/O failure in memory).
    #[error("cannot encode the PNG image: {0}")]
    Png(#[source] png::EncodingError),
}

/// PNG bytes: black modules on white, 1-bit greyscale, [`MODULE_PX`] pixels per module and a
/// [`QUIET_ZONE`]-module border.
pub fn png(data: &str) -> Result<Vec<u8>, QrError> {
    let code = encode(data)?;
    let modules = code.width;
    let colors = &code.colors;
    let scale = MODULE_PX as usize;
    let quiet = QUIET_ZONE as usize;
    let side_modules = modules + 2 * quiet;
    let side_px = side_modules * scale;
    // 1-bit rows are packed MSB first; 1 is white, 0 is black.
    let row_bytes = side_px.div_ceil(8);
    let mut pixels = vec![0xFF_u8; row_bytes * side_px];
    for (y, module_row) in colors.chunks_exact(modules).enumerate() {
        let mut packed = vec![0xFF_u8; row_bytes];
        for (x, color) in module_row.iter().enumerate() {
            if *color == Color::Dark {
                let first = (x + quiet) * scale;
                for px in first..first + scale {
                    packed[px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
        let first_line = (y + quiet) * scale;
        for line in first_line..first_line + scale {
            pixels[line * row_bytes..(line + 1) * row_bytes].copy_from_slice(&packed);
        }
    }

    let side = u32::try_from(side_px).map_err(|_| QrError::TooLong { len: data.len() })?;
    let mut out = Vec::with_capacity(pixels.len() / 4 + 128);
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // Each module row is repeated MODULE_PX times, so the Up filter turns all but the first of
    // them into zeros, and the fast (fdeflate) compressor squeezes those well: about 2.7 KB per
    // code in ~20 µs, where the default zlib level takes ~300 µs to reach 1.3 KB.
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder.write_header().map_err(QrError::Png)?;
    writer.write_image_data(&pixels).map_err(QrError::Png)?;
    writer.finish().map_err(QrError::Png)?;
    Ok(out)
}

/// A standalone SVG document (starting with `<?xml`), black modules on white, one path.
pub fn svg(data: &str) -> Result<String, QrError> {
    let code = encode(data)?;
    Ok(code
        .renderer::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(MODULE_PX, MODULE_PX)
        .build())
}

/// Unicode half blocks, two modules per character cell, with the quiet zone; lines are joined by
/// `\n` without a trailing newline. Light modules are drawn as blocks and dark ones as blank
/// cells, so the code reads dark-on-light on the usual light-text-on-dark terminal.
pub fn terminal(data: &str) -> Result<String, QrError> {
    use qrcode::render::unicode::Dense1x2;
    let code = encode(data)?;
    // The renderer draws "dark" as a block, which a dark terminal shows light; swap the two so
    // the code is dark on light there (as `qrencode -t UTF8` does): many phone scanners do not
    // read inverted codes. On a light-background terminal the code is inverted instead.
    Ok(code
        .renderer::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// A QR symbol's modules, row by row, after masking.
struct Modules {
    width: usize,
    colors: Vec<Color>,
}

impl Modules {
    fn renderer<P: qrcode::render::Pixel>(&self) -> Renderer<'_, P> {
        Renderer::new(&self.colors, self.width, QUIET_ZONE)
    }
}

/// The QR masks, in the order `qrcode` tries them (the first of equal scores wins).
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// Encodes like `QrCode::with_error_correction_level(data, M)` and picks the same mask, but
/// scores the masks here: qrcode's scorer allocates for every module it checks and takes ~1.7 ms
/// per code, which would make a 1000-person enrolment spend seconds choosing masks.
fn encode(data: &str) -> Result<Modules, QrError> {
    let map_err = |e| match e {
        qrcode::types::QrError::DataTooLong => QrError::TooLong { len: data.len() },
        other => QrError::Encode(other),
    };
    let bits = qrcode::bits::encode_auto(data.as_bytes(), EcLevel::M).map_err(map_err)?;
    let version = bits.version();
    let (codewords, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).map_err(map_err)?;
    let width = usize::from(version.width().unsigned_abs());
    let mut unmasked = Canvas::new(version, EcLevel::M);
    unmasked.draw_all_functional_patterns();
    unmasked.draw_data(&codewords, &ec);

    let mut best: Option<(u32, Vec<Color>)> = None;
    for mask in MASKS {
        let mut canvas = unmasked.clone();
        canvas.apply_mask(mask);
        let colors = canvas.into_colors();
        let score = penalty(&colors, width);
        if best.as_ref().is_none_or(|(best_score, _)| score < *best_score) {
            best = Some((score, colors));
        }
    }
    match best {
        Some((_, colors)) => Ok(Modules { width, colors }),
        None => Err(QrError::Encode(qrcode::types::QrError::InvalidVersion)),
    }
}

/// The ISO/IEC 18004 mask penalty as `qrcode` computes it (N1 runs, N2 blocks, N3 finder-like
/// patterns, N4 balance), so the chosen mask is the one `qrcode` itself would choose.
fn penalty(colors: &[Color], width: usize) -> u32 {
    let rows: Vec<bool> = colors.iter().map(|c| *c == Color::Dark).collect();
    let mut columns = vec![false; rows.len()];
    for (y, row) in rows.chunks_exact(width).enumerate() {
        for (x, dark) in row.iter().enumerate() {
            columns[x * width + y] = *dark;
        }
    }
    let mut score: u32 = rows
        .chunks_exact(width)
        .chain(columns.chunks_exact(width))
        .map(line_penalty)
        .sum();
    // N2: every 2×2 block of one colour costs 3.
    for (upper, lower) in rows.chunks_exact(width).zip(rows.chunks_exact(width).skip(1)) {
        let blocks = upper.windows(2).zip(lower.windows(2)).filter(|(u, l)| {
            let c = u[0];
            (u[1] == c) & (l[0] == c) & (l[1] == c)
        });
        score += 3 * u32::try_from(blocks.count()).unwrap_or(u32::MAX);
    }
    // N4: distance of the dark share from 50 %, in half-percent steps.
    let dark_count = rows.iter().filter(|dark| **dark).count();
    let ratio = dark_count * 200 / rows.len().max(1);
    score + u32::try_from(ratio.abs_diff(100)).unwrap_or(u32::MAX)
}

/// N1 and N3 along one row or column.
fn line_penalty(line: &[bool]) -> u32 {
    // Dark, light, dark, dark, dark, light, dark, oldest module in the highest bit.
    const FINDER: u8 = 0b101_1101;
    let Some(&first) = line.first() else { return 0 };
    let mut score = 0;
    let mut previous = first;
    let mut run: u32 = 0;
    let mut window = 0_u8;
    for (i, &dark) in line.iter().enumerate() {
        // N1: a run of 5 + k modules of one colour costs 3 + k. Branch-free: module colours are
        // close to random, so a branch here would be mispredicted half the time.
        let same = u32::from(dark == previous);
        score += (1 - same) * u32::from(run >= 5) * run.saturating_sub(2);
        run = run * same + 1;
        previous = dark;
        // N3: the finder shape with four light modules (or the edge) on at least one side.
        window = ((window << 1) | u8::from(dark)) & 0x7F;
        if window == FINDER && i >= 6 {
            let start = i - 6;
            let dark_before = line[start.saturating_sub(4)..start].contains(&true);
            let dark_after = line[i + 1..(i + 5).min(line.len())].contains(&true);
            if !dark_before || !dark_after {
                score += 40;
            }
        }
    }
    score + u32::from(run >= 5) * run.saturating_sub(2)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::io;

    const URI: &str = "otpauth://totp/Rampart:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Rampart&algorithm=SHA1&digits=6&period=30";

    /// Decodes a PNG as the `png` crate reads it, then finds and reads the QR code with rqrr.
    fn decode_png(bytes: &[u8]) -> String {
        let mut decoder = png::Decoder::new(io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the image");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn modules_match_qrcode_including_its_mask_choice() {
        let mut inputs = vec![
            String::new(),
            "a".to_owned(),
            "0123456789".repeat(30),
            "\u{e9}".repeat(300),
        ];
        for n in 0..40 {
            inputs.push(format!("{URI}&n={n}"));
            inputs.push(format!(
                "otpauth://totp/Rampart:user{n}?secret={}&issuer=Rampart",
                "AB2C".repeat(n % 40)
            ));
        }
        for input in inputs {
            let ours = encode(&input).unwrap();
            let theirs = qrcode::QrCode::with_error_correction_level(input.as_bytes(), EcLevel::M).unwrap();
            assert_eq!(ours.width, theirs.width(), "{input}");
            assert!(ours.colors == theirs.to_colors(), "{input}");
        }
    }

    #[test]
    fn png_decodes_back_to_the_uri() {
        let bytes = png(URI).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(decode_png(&bytes), URI);
    }

    #[test]
    fn png_has_quiet_zone_and_module_scale() {
        let bytes = png(URI).unwrap();
        let decoder = png::Decoder::new(io::Cursor::new(&bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        let modules = encode(URI).unwrap().width as u32;
        assert_eq!(info.width, (modules + 2 * QUIET_ZONE) * MODULE_PX);
        assert_eq!(info.height, info.width);
        assert_eq!(info.bit_depth, png::BitDepth::One);
    }

    #[test]
    fn svg_is_a_standalone_document() {
        let doc = svg(URI).unwrap();
        assert!(doc.starts_with("<?xml") || doc.starts_with("<svg"));
        assert!(doc.contains("<svg"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert!(!doc.contains("secret"), "the SVG holds modules, not the URI text");
    }

    #[test]
    fn terminal_uses_half_blocks_with_quiet_zone() {
        let text = terminal(URI).unwrap();
        let modules = encode(URI).unwrap().width;
        let side = modules + 2 * QUIET_ZONE as usize;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == side));
        assert!(!text.ends_with('\n'));
        // The first line is all quiet zone (light), drawn as full blocks.
        assert!(lines[0].chars().all(|c| c == '\u{2588}'));
    }

    #[test]
    fn terminal_decodes_back_to_the_uri_on_a_dark_terminal() {
        // A block is lit (light); a space shows the dark background. Each character holds two
        // modules one above the other; draw each module as 4x4 pixels.
        const PX: usize = 4;
        let text = terminal(URI).unwrap();
        let mut grid: Vec<Vec<u8>> = Vec::new();
        for line in text.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '\u{2588}' => (255, 255),
                    '\u{2580}' => (255, 0),
                    '\u{2584}' => (0, 255),
                    ' ' => (0, 0),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            grid.push(top);
            grid.push(bottom);
        }
        let side = grid[0].len();
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(side * PX, grid.len() * PX, |x, y| grid[y / PX][x / PX]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, URI);
    }

    #[test]
    fn too_long_data_is_an_error_that_does_not_quote_it() {
        let long = format!("otpauth://totp/x?secret={}", "\u{e9}".repeat(3000));
        for result in [png(&long).map(drop), svg(&long).map(drop), terminal(&long).map(drop)] {
            let err = result.unwrap_err();
            assert!(matches!(err, QrError::TooLong { .. }), "{err:?}");
            assert!(!err.to_string().contains("secret"));
        }
    }

    /// Checks that the system's zbar reads our PNGs, as phones' decoders do. Needs `zbarimg`
    /// (Debian package zbar-tools, installed by scripts/test), so it fails, rather than skips,
    /// without it: run with `cargo test -p rampart-core --features qr -- --ignored`.
    #[test]
    #[ignore = "needs zbarimg (zbar-tools)"]
    fn zbarimg_reads_the_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.png");
        std::fs::write(&path, png(URI).unwrap()).unwrap();
        let output = std::process::Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(&path)
            .output()
            .expect("zbarimg runs (apt-get install zbar-tools)");
        assert!(
            output.status.success(),
            "zbarimg: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8(output.stdout).unwrap(), format!("{URI}\n"));
    }
}
