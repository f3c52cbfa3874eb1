// SPDX-License-Identifier: GPL-2.0

//! The display mode the mdpy device advertises in its vendor capability, and
//! its validation: a hostile or broken host must not get us to register a
//! framebuffer larger than the BAR behind it.

use kernel::{fmt, macros::kunit_tests};

/// `DRM_FORMAT_XRGB8888` (fourcc "XR24"), the only format mdpy has.
pub(crate) const DRM_FORMAT_XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
/// Smallest width and height the C sample accepts.
pub(crate) const MIN_SIZE: u32 = 100;
/// Largest width and height the C sample accepts.
pub(crate) const MAX_SIZE: u32 = 10000;
/// Bytes per XRGB8888 pixel.
pub(crate) const BYTES_PER_PIXEL: u32 = 4;

/// A validated mdpy display mode: XRGB8888, `width` x `height`, which fits in
/// BAR0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mode {
    pub(crate) width: u32,
    pub(crate) height: u32,
}

impl Mode {
    /// Bytes per line.
    pub(crate) fn stride(&self) -> u32 {
        // Cannot overflow: `width <= MAX_SIZE`.
        self.width * BYTES_PER_PIXEL
    }
}

/// Why the advertised mode was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModeError {
    /// The format is not XRGB8888.
    Format(u32),
    /// The width is outside `MIN_SIZE..=MAX_SIZE`.
    Width(u32),
    /// The height is outside `MIN_SIZE..=MAX_SIZE`.
    Height(u32),
    /// `width * height * 4` bytes do not fit in BAR0.
    TooBigForBar {
        /// Bytes the mode needs.
        needed: u64,
        /// Size of BAR0.
        bar: u64,
    },
}

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Format(format) => write!(
                f,
                "format mismatch (0x{format:x} != 0x{DRM_FORMAT_XRGB8888:x})"
            ),
            Self::Width(w) => write!(f, "width ({w}) out of range"),
            Self::Height(h) => write!(f, "height ({h}) out of range"),
            Self::TooBigForBar { needed, bar } => {
                write!(f, "framebuffer needs {needed} bytes, BAR0 has only {bar}")
            }
        }
    }
}

/// Validates the mode read from the vendor capability against the size of
/// BAR0.
pub(crate) fn validate(
    format: u32,
    width: u32,
    height: u32,
    bar_len: u64,
) -> Result<Mode, ModeError> {
    if format != DRM_FORMAT_XRGB8888 {
        return Err(ModeError::Format(format));
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&width) {
        return Err(ModeError::Width(width));
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&height) {
        return Err(ModeError::Height(height));
    }
    // Cannot overflow in u64: at most 10000 * 10000 * 4.
    let needed = u64::from(width) * u64::from(height) * u64::from(BYTES_PER_PIXEL);
    if needed > bar_len {
        return Err(ModeError::TooBigForBar {
            needed,
            bar: bar_len,
        });
    }
    Ok(Mode { width, height })
}

#[kunit_tests(mdpy_fb_mode)]
mod tests {
    use super::*;

    const XR24: u32 = DRM_FORMAT_XRGB8888;

    #[test]
    fn fourcc_is_xr24() {
        // include/uapi/drm/drm_fourcc.h: fourcc_code('X', 'R', '2', '4').
        assert_eq!(DRM_FORMAT_XRGB8888, 0x3432_5258);
    }

    #[test]
    fn accepts_the_mdpy_types() {
        // The host's types and their BAR0 sizes (roundup_pow_of_two(w * h * 4)).
        for (w, h, bar) in [
            (640, 480, 2u64 << 20),
            (1024, 768, 4 << 20),
            (1920, 1080, 8 << 20),
        ] {
            assert_eq!(
                validate(XR24, w, h, bar),
                Ok(Mode {
                    width: w,
                    height: h
                })
            );
        }
        assert_eq!(
            Mode {
                width: 1024,
                height: 768
            }
            .stride(),
            4096
        );
    }

    #[test]
    fn accepts_the_limits() {
        let big = 10000u64 * 10000 * 4;
        assert!(validate(XR24, MIN_SIZE, MIN_SIZE, big).is_ok());
        assert!(validate(XR24, MAX_SIZE, MAX_SIZE, big).is_ok());
        assert!(validate(XR24, MIN_SIZE, MAX_SIZE, big).is_ok());
    }

    #[test]
    fn rejects_other_formats() {
        for format in [
            0,
            0x3432_5241, /* AR24 */
            0x3631_4752, /* RG16 */
            u32::MAX,
        ] {
            assert_eq!(
                validate(format, 1024, 768, 4 << 20),
                Err(ModeError::Format(format))
            );
        }
    }

    #[test]
    fn rejects_widths_out_of_range() {
        for w in [0, 1, MIN_SIZE - 1, MAX_SIZE + 1, u32::MAX] {
            assert_eq!(validate(XR24, w, 768, u64::MAX), Err(ModeError::Width(w)));
        }
    }

    #[test]
    fn rejects_heights_out_of_range() {
        for h in [0, 1, MIN_SIZE - 1, MAX_SIZE + 1, u32::MAX] {
            assert_eq!(validate(XR24, 1024, h, u64::MAX), Err(ModeError::Height(h)));
        }
    }

    #[test]
    fn rejects_framebuffers_larger_than_bar0() {
        // Exactly fits, then one byte short.
        assert!(validate(XR24, 1024, 768, 1024 * 768 * 4).is_ok());
        assert_eq!(
            validate(XR24, 1024, 768, 1024 * 768 * 4 - 1),
            Err(ModeError::TooBigForBar {
                needed: 1024 * 768 * 4,
                bar: 1024 * 768 * 4 - 1
            })
        );
        // A 1920x1080 mode advertised over a vga-sized BAR.
        assert!(matches!(
            validate(XR24, 1920, 1080, 2 << 20),
            Err(ModeError::TooBigForBar { .. })
        ));
        // No BAR at all.
        assert!(matches!(
            validate(XR24, MIN_SIZE, MIN_SIZE, 0),
            Err(ModeError::TooBigForBar { .. })
        ));
        // The largest mode needs 400 MB: no overflow in the size computation.
        assert_eq!(
            validate(XR24, MAX_SIZE, MAX_SIZE, 256 << 20),
            Err(ModeError::TooBigForBar {
                needed: 400_000_000,
                bar: 256 << 20
            })
        );
    }

    #[test]
    fn checks_format_before_sizes() {
        // Like the C sample: the first problem found is the one reported.
        assert_eq!(validate(0, 0, 0, 0), Err(ModeError::Format(0)));
        assert_eq!(validate(XR24, 0, 0, 0), Err(ModeError::Width(0)));
        assert_eq!(validate(XR24, 640, 0, 0), Err(ModeError::Height(0)));
    }
}
