package store

import (
	"errors"
	"fmt"
	"io"
)

// ChunkSource yields the chunks of one stored file, both engines' way.
type ChunkSource interface {
	// Chunk returns chunk n, which holds exactly want bytes. The returned
	// slice may be reused by the next call.
	Chunk(n, want int64) ([]byte, error)
	// Close frees what the source holds (a cursor, say).
	Close() error
}

// ErrReaderClosed is returned by a ChunkReader used after Close.
var ErrReaderClosed = errors.New("file reader is closed")

// ChunkReader is a FileReader over a file stored as fixed-size chunks
// (GridFS's layout, and the SQLite engine's). It holds one chunk at a time,
// and Seek only moves the position, so asking for the size (as
// http.ServeContent does) or jumping for a Range costs no fetch.
type ChunkReader struct {
	src       ChunkSource
	size      int64
	chunkSize int64
	pos       int64
	chunk     []byte
	loaded    int64 // the chunk in chunk, -1 for none
	closed    bool
}

// NewChunkReader reads a file of size bytes cut into chunkSize pieces.
func NewChunkReader(src ChunkSource, size, chunkSize int64) (*ChunkReader, error) {
	if chunkSize <= 0 {
		return nil, fmt.Errorf("bad chunk size %d", chunkSize)
	}
	return &ChunkReader{src: src, size: size, chunkSize: chunkSize, loaded: -1}, nil
}

func (r *ChunkReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, ErrReaderClosed
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := r.pos / r.chunkSize
	if n != r.loaded {
		c, err := r.src.Chunk(n, min(r.chunkSize, r.size-n*r.chunkSize))
		if err != nil {
			return 0, err
		}
		r.chunk, r.loaded = c, n
	}
	k := copy(p, r.chunk[r.pos-n*r.chunkSize:])
	r.pos += int64(k)
	return k, nil
}

func (r *ChunkReader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, ErrReaderClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek: negative position %d", abs)
	}
	r.pos = abs
	return abs, nil
}

func (r *ChunkReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.chunk = nil
	return r.src.Close()
}
