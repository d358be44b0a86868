//! Desktop audio through cpal (feature `cpal`).
//!
//! Each stream lives on its own small thread that owns the cpal `Stream` (which is not `Send`
//! on every platform) and waits for the stop signal; the audio callbacks only touch the rings.

use super::{
    capture_ring, playback_ring, AudioDevice, CaptureStream, DeviceError, PlaybackStream,
    StopGuard, StreamConfig,
};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, SupportedStreamConfigRange};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// The system's default input and output devices.
#[derive(Debug, Default, Clone)]
pub struct CpalDevice {
    errors: Arc<AtomicU64>,
}

impl CpalDevice {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stream errors reported by the backend (e.g. device unplugged): reopen when it grows.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// Picks 48 kHz in f32 or i16 with the fewest channels; we convert channels ourselves.
fn pick_config(
    ranges: impl Iterator<Item = SupportedStreamConfigRange>,
) -> Option<(cpal::StreamConfig, SampleFormat)> {
    ranges
        .filter(|r| matches!(r.sample_format(), SampleFormat::F32 | SampleFormat::I16))
        .filter_map(|r| r.try_with_sample_rate(crate::SAMPLE_RATE))
        .min_by_key(|c| (c.channels(), c.sample_format() != SampleFormat::F32))
        .map(|c| (c.config(), c.sample_format()))
}

fn backend(e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Backend(e.to_string())
}

/// Runs `open` on a keeper thread that holds the stream until the guard is dropped.
fn keep_stream(
    name: &str,
    open: impl FnOnce() -> Result<cpal::Stream, DeviceError> + Send + 'static,
) -> Result<StopGuard, DeviceError> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || match open() {
            Ok(stream) => {
                let _ = ready_tx.send(Ok(()));
                // Returns when the guard drops the sender.
                let _ = stop_rx.recv();
                drop(stream);
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
            }
        })
        .map_err(backend)?;
    ready_rx
        .recv()
        .map_err(|_| DeviceError::Backend(format!("{name} thread died")))??;
    Ok(StopGuard::new(move || {
        drop(stop_tx);
        let _ = handle.join();
    }))
}

impl AudioDevice for CpalDevice {
    fn open_capture(&mut self, config: StreamConfig) -> Result<CaptureStream, DeviceError> {
        let (mut sink, stream) = capture_ring(config);
        let errors = self.errors.clone();
        let guard = keep_stream("cpal-capture", move || {
            let host = cpal::default_host();
            let device = host
                .default_input_device()
                .ok_or_else(|| DeviceError::NoDevice("no default input".into()))?;
            let ranges = device.supported_input_configs().map_err(backend)?;
            let (cfg, format) =
                pick_config(ranges).ok_or_else(|| DeviceError::Unsupported("input".into()))?;
            let channels = usize::from(cfg.channels);
            let on_error = move |_| {
                errors.fetch_add(1, Ordering::Relaxed);
            };
            let stream = match format {
                SampleFormat::F32 => device.build_input_stream(
                    cfg,
                    move |data: &[f32], _: &_| sink.push_f32_interleaved(data, channels),
                    on_error,
                    None,
                ),
                _ => device.build_input_stream(
                    cfg,
                    move |data: &[i16], _: &_| sink.push_i16_interleaved(data, channels),
                    on_error,
                    None,
                ),
            }
            .map_err(backend)?;
            stream.play().map_err(backend)?;
            Ok(stream)
        })?;
        Ok(stream.with_guard(guard))
    }

    fn open_playback(&mut self, config: StreamConfig) -> Result<PlaybackStream, DeviceError> {
        let (mut source, stream) = playback_ring(config);
        let errors = self.errors.clone();
        let guard = keep_stream("cpal-playback", move || {
            let host = cpal::default_host();
            let device = host
                .default_output_device()
                .ok_or_else(|| DeviceError::NoDevice("no default output".into()))?;
            let ranges = device.supported_output_configs().map_err(backend)?;
            let (cfg, format) =
                pick_config(ranges).ok_or_else(|| DeviceError::Unsupported("output".into()))?;
            let channels = usize::from(cfg.channels);
            let on_error = move |_| {
                errors.fetch_add(1, Ordering::Relaxed);
            };
            let stream = match format {
                SampleFormat::F32 => device.build_output_stream(
                    cfg,
                    move |data: &mut [f32], _: &_| source.pull_f32_interleaved(data, channels),
                    on_error,
                    None,
                ),
                _ => device.build_output_stream(
                    cfg,
                    move |data: &mut [i16], _: &_| source.pull_i16_interleaved(data, channels),
                    on_error,
                    None,
                ),
            }
            .map_err(backend)?;
            stream.play().map_err(backend)?;
            Ok(stream)
        })?;
        Ok(stream.with_guard(guard))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_without_a_sound_card_fails_cleanly() {
        // CI machines have no audio hardware: opening must return an error (or work, on a
        // developer machine), never panic or hang.
        let mut dev = CpalDevice::new();
        match dev.open_playback(StreamConfig::default()) {
            Ok(stream) => drop(stream),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        match dev.open_capture(StreamConfig::default()) {
            Ok(stream) => drop(stream),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
