//! Image bodies: PNG (`original`) and lossy WebP (`webp`, and the grey tiles of `rs-webp`).
//!
//! The WebP encoder is `vaam-image-webp`, a pure-Rust fork of `image-webp` with a lossy VP8
//! encoder (MIT OR Apache-2.0). It runs on every target, the browser included, which libwebp
//! does not; `image-webp` itself encodes losslessly only, and zenwebp is AGPL
//! (docs/TOOLCHAIN.md). Its decoder also reads every WebP, so one crate serves both sides.

use std::io::Cursor;

use ::image::codecs::png::PngEncoder;
use ::image::{ExtendedColorType, GrayImage, ImageEncoder, RgbImage};
use image_webp::{ColorType, EncoderParams, WebPDecoder, WebPEncoder};

use crate::CodecError;

/// Our default WebP quality: the setting of this encoder that matches libwebp's q80 (the
/// paper's setting, libwebp's default) in size on MVTec AD bottle, 3.6 kB against 3.4 kB per
/// 224x224 image, at 1.3 dB lower PSNR (36.8 against 38.1 dB). Matching libwebp's PSNR takes
/// q95 and 1.42x the bytes. Measured by `patchwire bench webp` (README, "WebP").
pub const DEFAULT_WEBP_QUALITY: u8 = 90;

/// Encodes an RGB image as PNG.
///
/// # Errors
/// [`CodecError::Image`] if the encoder fails (it cannot for a well-formed image).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(img.as_raw(), img.width(), img.height(), ExtendedColorType::Rgb8)
        .map_err(|e| CodecError::Image(format!("PNG encoding: {e}")))?;
    Ok(out)
}

/// Decodes a PNG payload body.
///
/// # Errors
/// [`CodecError::Image`] for bytes that are not a PNG image.
pub fn decode_png(bytes: &[u8]) -> Result<RgbImage, CodecError> {
    let img = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png)
        .map_err(|e| CodecError::Image(format!("PNG decoding: {e}")))?;
    Ok(img.to_rgb8())
}

fn check_quality(quality: u8) -> Result<(), CodecError> {
    if quality > 100 {
        return Err(CodecError::Param(format!("WebP quality {quality} is not in 0..=100")));
    }
    Ok(())
}

fn encode_webp(
    data: &[u8],
    w: u32,
    h: u32,
    color: ColorType,
    q: u8,
) -> Result<Vec<u8>, CodecError> {
    check_quality(q)?;
    // vaam-image-webp 0.1 writes odd-sized lossy images wrongly (errors up to 143 of 255 on
    // a 63x63 grey image, in libwebp's decoder too), so odd sizes are refused here and
    // callers pad (see tiles.rs).
    if w % 2 == 1 || h % 2 == 1 {
        return Err(CodecError::Size(format!("lossy WebP needs even dimensions, got {w}x{h}")));
    }
    let mut out = Vec::new();
    let mut encoder = WebPEncoder::new(&mut out);
    let mut params = EncoderParams::default();
    params.use_lossy = true;
    params.lossy_quality = q;
    encoder.set_params(params);
    encoder
        .encode(data, w, h, color)
        .map_err(|e| CodecError::Image(format!("WebP encoding: {e}")))?;
    Ok(out)
}

/// Encodes an RGB image as lossy WebP at `quality` (0..=100).
///
/// # Errors
/// [`CodecError::Param`] for a quality over 100.
pub fn encode_webp_rgb(img: &RgbImage, quality: u8) -> Result<Vec<u8>, CodecError> {
    encode_webp(img.as_raw(), img.width(), img.height(), ColorType::Rgb8, quality)
}

/// Encodes a grey image as lossy WebP at `quality` (0..=100).
///
/// The grey values go in as R = G = B. vaam-image-webp 0.1's own grey input (`L8`) writes
/// grey straight into luma, while VP8 decoding (its own and libwebp's) reads luma as
/// studio-range 16..235: grey 16 came back as 0 and 235 as 255. Its RGB path converts to
/// studio range, and flat chroma costs almost nothing.
///
/// # Errors
/// [`CodecError::Param`] for a quality over 100.
pub fn encode_webp_grey(img: &GrayImage, quality: u8) -> Result<Vec<u8>, CodecError> {
    let rgb: Vec<u8> = img.as_raw().iter().flat_map(|&v| [v, v, v]).collect();
    encode_webp(&rgb, img.width(), img.height(), ColorType::Rgb8, quality)
}

/// Largest side a WebP body may declare; payloads are 224x224 images or small tiles, so
/// anything larger is refused before memory is allocated for it.
pub const MAX_WEBP_SIDE: u32 = 4096;

/// Decodes WebP bytes to RGB (an alpha channel, if any, is dropped).
///
/// # Errors
/// [`CodecError::Image`] for bytes that are not a WebP image or declare a huge one.
pub fn decode_webp(bytes: &[u8]) -> Result<RgbImage, CodecError> {
    let err = |e: image_webp::DecodingError| CodecError::Image(format!("WebP decoding: {e}"));
    let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(err)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w > MAX_WEBP_SIDE || h > MAX_WEBP_SIDE {
        return Err(CodecError::Image(format!("WebP of {w}x{h} pixels refused")));
    }
    let channels = if decoder.has_alpha() { 4 } else { 3 };
    let mut buf = vec![0u8; w as usize * h as usize * channels];
    decoder.read_image(&mut buf).map_err(err)?;
    let rgb = if channels == 4 {
        buf.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect()
    } else {
        buf
    };
    RgbImage::from_raw(w, h, rgb).ok_or_else(|| CodecError::Image("WebP buffer size".into()))
}

/// Decodes a grey WebP (as written by [`encode_webp_grey`]) to its luma values.
///
/// # Errors
/// As [`decode_webp`].
pub fn decode_webp_grey(bytes: &[u8]) -> Result<GrayImage, CodecError> {
    let rgb = decode_webp(bytes)?;
    let (w, h) = rgb.dimensions();
    // Neutral chroma decodes to R = G = B up to rounding; green carries luma most directly.
    let grey = rgb.pixels().map(|p| p[1]).collect();
    GrayImage::from_raw(w, h, grey).ok_or_else(|| CodecError::Image("WebP buffer size".into()))
}

/// Peak signal-to-noise ratio of `b` against `a`, in dB (infinite when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>()
        / a.len().max(1) as f64;
    if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo_like() -> RgbImage {
        RgbImage::from_fn(224, 224, |x, y| {
            let v = ((x as f32 / 20.0).sin() * 60.0 + (y as f32 / 31.0).cos() * 50.0 + 128.0) as u8;
            ::image::Rgb([v, v.wrapping_add(20), 255 - v])
        })
    }

    #[test]
    fn png_is_lossless() {
        let img = photo_like();
        assert_eq!(decode_png(&encode_png(&img).unwrap()).unwrap(), img);
        assert!(matches!(decode_png(b"GIF89a"), Err(CodecError::Image(_))));
    }

    #[test]
    fn lossy_webp_is_small_and_close() {
        let img = photo_like();
        let bytes = encode_webp_rgb(&img, 80).unwrap();
        let back = decode_webp(&bytes).unwrap();
        assert_eq!(back.dimensions(), (224, 224));
        assert!(bytes.len() < encode_png(&img).unwrap().len() / 4, "{} bytes", bytes.len());
        assert!(psnr(img.as_raw(), back.as_raw()) > 30.0);
        // Lower quality, fewer bytes.
        assert!(encode_webp_rgb(&img, 20).unwrap().len() < bytes.len());
    }

    #[test]
    fn grey_webp_round_trips_luma() {
        let g = GrayImage::from_fn(64, 62, |x, y| {
            ::image::Luma([
                ((x as f32 / 7.0).sin() * 90.0 + (y as f32 / 11.0).cos() * 30.0 + 128.0) as u8,
            ])
        });
        let back = decode_webp_grey(&encode_webp_grey(&g, 90).unwrap()).unwrap();
        assert_eq!(back.dimensions(), (64, 62));
        assert!(psnr(g.as_raw(), back.as_raw()) > 35.0, "{}", psnr(g.as_raw(), back.as_raw()));
    }

    #[test]
    fn grey_levels_keep_their_range_through_webp() {
        // Regression: grey written as luma directly came back stretched (16 -> 0, 235 -> 255).
        for v in [0u8, 16, 50, 128, 200, 235, 255] {
            let g = GrayImage::from_pixel(32, 32, ::image::Luma([v]));
            let back = decode_webp_grey(&encode_webp_grey(&g, 100).unwrap()).unwrap();
            let got = back.get_pixel(10, 10)[0];
            assert!(got.abs_diff(v) <= 1, "grey {v} came back as {got}");
        }
    }

    #[test]
    fn garbage_and_bad_quality_are_errors() {
        assert!(matches!(decode_webp(b"RIFF\x00\x00\x00\x00WEBPVP8 "), Err(CodecError::Image(_))));
        assert!(matches!(decode_webp(&[]), Err(CodecError::Image(_))));
        assert!(matches!(encode_webp_rgb(&photo_like(), 101), Err(CodecError::Param(_))));
        let odd = GrayImage::new(63, 64);
        assert!(matches!(encode_webp_grey(&odd, 80), Err(CodecError::Size(_))));
    }
}
