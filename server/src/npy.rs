//! Just enough of NumPy's `.npy` format (version 1, little-endian float32, C order) to hand
//! tensors to the onnxruntime oracle (`models/ort_run.py`) and read its outputs back.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

/// Writes a float32 array of `shape`.
///
/// # Errors
/// When the file cannot be written or `data` does not fill `shape`.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    ensure!(
        shape.iter().product::<usize>() == data.len(),
        "shape {shape:?} does not fit {} values",
        data.len()
    );
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple =
        if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + newline is padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Reads a little-endian float32, C-order `.npy` file: its shape and values.
///
/// # Errors
/// Unreadable files and any other dtype, order or version.
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        bytes.len() >= 10 && bytes.starts_with(b"\x93NUMPY"),
        "{} is not a .npy file",
        path.display()
    );
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
        v => bail!("{}: .npy version {v} not supported", path.display()),
    };
    let header =
        std::str::from_utf8(bytes.get(start..start + header_len).context("truncated header")?)?;
    ensure!(
        header.contains("'<f4'") && header.contains("'fortran_order': False"),
        "{}: need little-endian float32 in C order, header {header}",
        path.display()
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .context("no shape in header")?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let body = &bytes[start + header_len..];
    ensure!(
        body.len() == shape.iter().product::<usize>() * 4,
        "{}: body does not match shape {shape:?}",
        path.display()
    );
    Ok((
        shape,
        body.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("pw-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.npy");
        write_f32(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        assert_eq!(read_f32(&path).unwrap(), (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]));
        write_f32(&path, &[4], &[0.0; 4]).unwrap();
        assert_eq!(read_f32(&path).unwrap().0, vec![4]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
