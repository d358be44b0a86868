//! Member photos: `PUT`/`DELETE /v1/me/avatar` and `GET /media/avatars/HASH-SIZE.jpg`.
//!
//! An upload is decoded (JPEG, PNG or WebP, within pixel and memory limits), turned upright
//! by its EXIF orientation, cropped to the centred square and re-encoded as baseline JPEG
//! at two sizes. Nothing of the original file survives (no EXIF, GPS or trailing bytes).
//! Files are named by the hash of their content, written to a temporary file and renamed,
//! so a URL always means the same bytes and can be cached for a year.

use super::http::{Authed, Body, ClientIp};
use super::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use ruang_proto::{ErrorCode, Profile, AVATAR_PROFILE, AVATAR_TILE};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::path::{Path as FsPath, PathBuf};

/// Widest or tallest picture accepted, in pixels.
pub const MAX_EDGE: u32 = 8192;
/// Smallest edge accepted: anything smaller is not a face anyone can see.
pub const MIN_EDGE: u32 = 64;
/// Memory the decoder may use.
const MAX_DECODE_BYTES: u64 = 256 << 20;
const JPEG_QUALITY: u8 = 85;
/// Photos decoded at once, server-wide; more uploads wait their turn.
pub const MAX_CONCURRENT_DECODES: usize = 2;

/// A processed photo: its content hash and the JPEG of each size.
#[derive(Debug)]
pub struct Processed {
    pub hash: String,
    pub files: Vec<(u32, Vec<u8>)>,
}

/// Decodes, checks, crops and re-encodes an uploaded photo. The error is the message for
/// the member.
pub fn process(bytes: &[u8]) -> Result<Processed, String> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the image: {e}"))?;
    match reader.format() {
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP) => {}
        _ => return Err("the photo must be a JPEG, PNG or WebP image".into()),
    }
    // JPEG decoders fill a cut-off file with grey; a whole JPEG has its end marker
    // (0xFFD9 cannot occur inside the entropy-coded data, where 0xFF is stuffed).
    if reader.format() == Some(ImageFormat::Jpeg) && !bytes.windows(2).any(|w| w == [0xFF, 0xD9]) {
        return Err("the photo is cut off (incomplete JPEG)".into());
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_EDGE);
    limits.max_image_height = Some(MAX_EDGE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = reader;
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let (w, h) = decoder.dimensions();
    if w < MIN_EDGE || h < MIN_EDGE {
        return Err(format!(
            "the photo is {w}×{h} pixels; it needs at least {MIN_EDGE}×{MIN_EDGE}"
        ));
    }
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(describe)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let mut files = Vec::new();
    for size in [AVATAR_PROFILE, AVATAR_TILE] {
        let resized = square.resize_exact(size, size, image::imageops::FilterType::Lanczos3);
        let rgb = on_white(&resized);
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&rgb)
            .map_err(|e| format!("cannot encode the photo: {e}"))?;
        files.push((size, out));
    }
    let mut hasher = Sha256::new();
    for (_, f) in &files {
        hasher.update(f);
    }
    let hash = hex::encode(&hasher.finalize()[..16]);
    Ok(Processed { hash, files })
}

fn describe(e: image::ImageError) -> String {
    match e {
        image::ImageError::Limits(_) => {
            format!("the photo is too large; at most {MAX_EDGE}×{MAX_EDGE} pixels")
        }
        image::ImageError::Unsupported(_) => {
            "the photo must be a JPEG, PNG or WebP image".to_owned()
        }
        e => format!("the photo cannot be decoded: {e}"),
    }
}

/// Flattens transparency onto white (JPEG has no alpha).
fn on_white(img: &DynamicImage) -> image::RgbImage {
    let rgba = img.to_rgba8();
    let mut out = image::RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// `avatars/` under the media directory.
pub fn avatar_dir(media: &FsPath) -> PathBuf {
    media.join("avatars")
}

fn file_name(hash: &str, size: u32) -> String {
    format!("{hash}-{size}.jpg")
}

/// `PUT /v1/me/avatar`: the body is the image file itself.
pub async fn put_avatar(
    State(state): State<AppState>,
    Authed(me): Authed,
    ClientIp(ip): ClientIp,
    Body(body): Body,
) -> Result<Json<Profile>, ApiError> {
    // Every upload counts, good or bad: decoding costs CPU and memory.
    let budget = state.photo_limiter.check(ip).map_err(|_| {
        ApiError::new(
            ErrorCode::RateLimited,
            "too many photo uploads from this address; try again in a minute",
        )
    })?;
    budget.fail();
    if body.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "send the photo (JPEG, PNG or WebP) as the request body",
        ));
    }
    let dir = avatar_dir(&state.media_dir);
    let _permit = state
        .photo_decodes
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::code(ErrorCode::Unavailable))?;
    let processed = tokio::task::spawn_blocking(move || -> Result<Processed, ApiError> {
        let p = process(&body).map_err(|m| ApiError::new(ErrorCode::InvalidField, m))?;
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        for (size, bytes) in &p.files {
            crate::replay::write_atomic(&dir, &file_name(&p.hash, *size), bytes)
                .map_err(io_error)?;
        }
        Ok(p)
    })
    .await
    .map_err(|_| ApiError::code(ErrorCode::Internal))??;
    let old = state
        .store
        .set_avatar(&me.user.id, Some(&processed.hash))
        .await?;
    if let Some(old) = old.filter(|o| *o != processed.hash) {
        remove_unused(&state, &old).await;
    }
    tracing::info!(user = %me.user.id, hash = %processed.hash, "new photo");
    Ok(Json(
        super::social::full_profile(&state, &me, &me.user.id).await?,
    ))
}

/// `DELETE /v1/me/avatar`.
pub async fn delete_avatar(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> Result<StatusCode, ApiError> {
    if let Some(old) = state.store.set_avatar(&me.user.id, None).await? {
        remove_unused(&state, &old).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a photo's files once no member shows it any more.
async fn remove_unused(state: &AppState, hash: &str) {
    if matches!(state.store.avatar_in_use(hash).await, Ok(false)) {
        let dir = avatar_dir(&state.media_dir);
        for size in [AVATAR_PROFILE, AVATAR_TILE] {
            let _ = tokio::fs::remove_file(dir.join(file_name(hash, size))).await;
        }
    }
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "writing a photo");
    ApiError::new(ErrorCode::Internal, "the photo could not be stored")
}

/// Whether a requested file name is one we write: 32 hex characters, a size, `.jpg`.
fn valid_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".jpg") else {
        return false;
    };
    let Some((hash, size)) = stem.split_once('-') else {
        return false;
    };
    hash.len() == 32
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (size == AVATAR_TILE.to_string() || size == AVATAR_PROFILE.to_string())
}

/// `GET /media/avatars/HASH-SIZE.jpg`: immutable, cached for a year.
pub async fn get_avatar(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    if !valid_name(&name) {
        return ApiError::new(ErrorCode::NotFound, "no such photo").into_response();
    }
    // In a cluster the photo may have been stored by another node: fetched once from it.
    let Some(path) =
        super::cluster_media::local_path(&state, super::cluster_media::MediaKind::Avatars, &name)
            .await
    else {
        return ApiError::new(ErrorCode::NotFound, "no such photo").into_response();
    };
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        Err(_) => ApiError::new(ErrorCode::NotFound, "no such photo").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn gradient(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }))
    }

    #[test]
    fn crops_to_square_and_makes_both_sizes() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let p = process(&encode(&gradient(300, 200), format)).unwrap();
            assert_eq!(p.hash.len(), 32);
            for (size, bytes) in &p.files {
                let img = image::load_from_memory(bytes).unwrap();
                assert_eq!((img.width(), img.height()), (*size, *size));
                assert_eq!(
                    image::guess_format(bytes).unwrap(),
                    ImageFormat::Jpeg,
                    "always re-encoded as JPEG"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_and_metadata_do_not_survive() {
        let mut png = encode(&gradient(100, 100), ImageFormat::Png);
        png.extend_from_slice(b"SECRET-GPS-48.8584N-2.2945E");
        let p = process(&png).unwrap();
        for (_, f) in &p.files {
            assert!(!f.windows(6).any(|w| w == b"SECRET"));
            // No APP1 (EXIF) segment in what we write.
            assert!(!f.windows(2).any(|w| w == [0xFF, 0xE1]));
        }
        // Same picture, same hash: content addressed.
        let again = process(&encode(&gradient(100, 100), ImageFormat::Png)).unwrap();
        assert_eq!(again.hash, p.hash);
    }

    #[test]
    fn refuses_junk_tiny_huge_and_other_formats() {
        assert!(process(b"not an image at all").is_err());
        assert!(process(&[]).is_err());
        let tiny = process(&encode(&gradient(20, 20), ImageFormat::Png)).unwrap_err();
        assert!(tiny.contains("at least"), "{tiny}");
        let mut gif = b"GIF89a".to_vec();
        gif.resize(200, 0);
        let gif = process(&gif).unwrap_err();
        assert!(gif.contains("JPEG, PNG or WebP"), "{gif}");
        // A PNG that claims 20000×20000 pixels: refused from its header, nothing decoded.
        let mut big = encode(&gradient(100, 100), ImageFormat::Png);
        big[16..20].copy_from_slice(&20000u32.to_be_bytes());
        big[20..24].copy_from_slice(&20000u32.to_be_bytes());
        assert!(process(&big).is_err());
        // Truncated data.
        let png = encode(&gradient(100, 100), ImageFormat::Png);
        assert!(process(&png[..png.len() / 2]).is_err());
        let jpeg = encode(&gradient(100, 100), ImageFormat::Jpeg);
        assert!(process(&jpeg[..jpeg.len() / 2]).is_err());
    }

    #[test]
    fn transparency_becomes_white() {
        let clear = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            80,
            80,
            image::Rgba([0, 0, 0, 0]),
        ));
        let p = process(&encode(&clear, ImageFormat::Png)).unwrap();
        let img = image::load_from_memory(&p.files[1].1).unwrap().to_rgb8();
        assert!(img.pixels().all(|px| px.0.iter().all(|c| *c > 240)));
    }

    #[test]
    fn only_our_file_names_are_served() {
        assert!(valid_name("0123456789abcdef0123456789abcdef-128.jpg"));
        assert!(valid_name("0123456789abcdef0123456789abcdef-512.jpg"));
        assert!(!valid_name("0123456789abcdef0123456789abcdef-64.jpg"));
        assert!(!valid_name("../../ruang.db"));
        assert!(!valid_name("0123456789ABCDEF0123456789abcdef-128.jpg"));
        assert!(!valid_name(
            ".tmp-x-0123456789abcdef0123456789abcdef-128.jpg"
        ));
    }
}
