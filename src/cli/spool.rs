//! Output held back until a run knows it succeeded: in memory up to a limit, then in an
//! unnamed temporary file, so a fleet's plan text never has to fit in memory.

use std::io::{self, BufWriter, Read, Seek, Write};

/// Bytes kept in memory before the spool moves to a temporary file.
const IN_MEMORY: usize = 8 << 20;

/// Text written now and read back once, in order.
#[derive(Default)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<BufWriter<std::fs::File>>,
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = &mut self.file {
            return f.write(buf);
        }
        self.memory.extend_from_slice(buf);
        if self.memory.len() > IN_MEMORY {
            let mut f = BufWriter::new(tempfile::tempfile()?);
            f.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(f);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Spool {
    /// Everything written, from the start.
    pub fn into_reader(self) -> io::Result<Box<dyn Read>> {
        match self.file {
            Some(f) => {
                let mut f = f.into_inner().map_err(io::IntoInnerError::into_error)?;
                f.rewind()?;
                Ok(Box::new(io::BufReader::new(f)))
            }
            None => Ok(Box::new(io::Cursor::new(self.memory))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_was_written_in_memory_and_past_the_limit() {
        for size in [10, IN_MEMORY + 4096] {
            let mut s = Spool::default();
            let line: Vec<u8> = (0..=255u8).collect();
            let mut written = Vec::new();
            while written.len() < size {
                s.write_all(&line).unwrap();
                written.extend_from_slice(&line);
            }
            assert_eq!(s.file.is_some(), size > IN_MEMORY);
            let mut back = Vec::new();
            s.into_reader().unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, written);
        }
    }
}
