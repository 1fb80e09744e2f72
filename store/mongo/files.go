package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/store"
)

// Files live in the GridFS bucket "uploads": the bytes in uploads.chunks, the
// record in the uploads.files document, whose filename is the file's name
// and whose metadata holds the rest. A file document is written only after
// its last chunk, so a file is visible only once complete.

type fileMeta struct {
	OwnerID     string `bson:"ownerId"`
	Kind        string `bson:"kind"`
	ContentType string `bson:"contentType"`
	Attached    bool   `bson:"attached"`
	// createdAt is the store's clock, kept apart from GridFS's uploadDate,
	// which the driver sets itself when the upload finishes.
	CreatedAt bson.DateTime `bson:"createdAt"`
}

type fileDoc struct {
	ID       string   `bson:"_id"`
	Length   int64    `bson:"length"`
	Filename string   `bson:"filename"`
	Metadata fileMeta `bson:"metadata"`
}

func (d *fileDoc) file() store.File {
	return store.File{
		ID:          d.ID,
		OwnerID:     d.Metadata.OwnerID,
		Name:        d.Filename,
		Size:        d.Length,
		ContentType: d.Metadata.ContentType,
		Kind:        d.Metadata.Kind,
		CreatedAt:   fromDate(d.Metadata.CreatedAt),
	}
}

// CreateFile streams r into GridFS. The driver buffers up to 16 MiB of
// chunks per upload before writing them, so memory stays bounded whatever
// the file's size. If anything fails, the chunks written so far are removed:
// a failed upload leaves nothing behind.
func (s *Store) CreateFile(ctx context.Context, f *store.File, r io.Reader) error {
	if f.ID == "" {
		f.ID = store.NewID()
	}
	if f.CreatedAt.IsZero() {
		f.CreatedAt = time.Now()
	}
	// Chunks are keyed by file id, so uploading under a taken id would mix
	// them with the existing file's and its clean-up would destroy both.
	switch taken, err := exists(ctx, s.filesColl, bson.D{{Key: "_id", Value: f.ID}}); {
	case err != nil:
		return fmt.Errorf("mongo: check file id: %w", err)
	case taken:
		return &store.ConflictError{On: store.ConflictID}
	}

	meta := fileMeta{
		OwnerID:     f.OwnerID,
		Kind:        f.Kind,
		ContentType: f.ContentType,
		CreatedAt:   toDate(f.CreatedAt),
	}
	s.uploadMu.Lock()
	up, err := s.bucket.OpenUploadStreamWithID(ctx, f.ID, f.Name, options.GridFSUpload().SetMetadata(meta))
	s.uploadMu.Unlock()
	if err != nil {
		return fmt.Errorf("mongo: open upload: %w", err)
	}

	n, err := io.Copy(up, r)
	if err != nil {
		_ = up.Abort()
		s.discardUpload(ctx, f.ID)
		return fmt.Errorf("mongo: upload file: %w", err)
	}
	if err := up.Close(); err != nil {
		// Close writes the last chunks and then the file document; after a
		// failure the stream can no longer abort, so clean up by hand.
		if mdriver.IsDuplicateKeyError(err) {
			return &store.ConflictError{On: store.ConflictID}
		}
		s.discardUpload(ctx, f.ID)
		return fmt.Errorf("mongo: finish upload: %w", err)
	}
	f.Size = n
	return nil
}

// discardUpload removes whatever a failed upload wrote, even when the
// caller's context is what failed it.
func (s *Store) discardUpload(ctx context.Context, id string) {
	ctx, cancel := detached(ctx)
	defer cancel()
	_, _ = s.chunksColl.DeleteMany(ctx, bson.D{{Key: "files_id", Value: id}})
	_, _ = s.filesColl.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
}

func (s *Store) FileByID(ctx context.Context, id string) (*store.File, error) {
	var d fileDoc
	if err := findOne(ctx, s.filesColl, bson.D{{Key: "_id", Value: id}}, &d, "file", id); err != nil {
		return nil, err
	}
	f := d.file()
	return &f, nil
}

// OpenFile opens a download stream. ctx governs the whole life of the
// reader, as the driver ties the stream's cursor to it.
func (s *Store) OpenFile(ctx context.Context, id string) (store.FileReader, error) {
	ds, err := s.openDownload(ctx, id)
	if err != nil {
		return nil, err
	}
	return &fileReader{ctx: ctx, s: s, id: id, size: ds.GetFile().Length, ds: ds}, nil
}

func (s *Store) openDownload(ctx context.Context, id string) (*mdriver.GridFSDownloadStream, error) {
	ds, err := s.bucket.OpenDownloadStream(ctx, id)
	if errors.Is(err, mdriver.ErrFileNotFound) {
		return nil, notFound("file", id)
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: open file %q: %w", id, err)
	}
	return ds, nil
}

func (s *Store) DeleteFile(ctx context.Context, id string) error {
	err := s.bucket.Delete(ctx, id)
	if errors.Is(err, mdriver.ErrFileNotFound) {
		return notFound("file", id)
	}
	if err != nil {
		return fmt.Errorf("mongo: delete file %q: %w", id, err)
	}
	return nil
}

func (s *Store) MarkAttached(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.filesColl.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "metadata.attached", Value: true}}}})
	if err != nil {
		return fmt.Errorf("mongo: mark files attached: %w", err)
	}
	return nil
}

func (s *Store) UnattachedBefore(ctx context.Context, t time.Time, limit int) ([]store.File, error) {
	if limit <= 0 {
		return nil, nil
	}
	cur, err := s.filesColl.Find(ctx, bson.D{
		{Key: "metadata.kind", Value: store.FileAttachment},
		{Key: "metadata.attached", Value: false},
		{Key: "metadata.createdAt", Value: bson.D{{Key: "$lt", Value: toDate(t)}}},
	}, options.Find().
		SetSort(bson.D{{Key: "metadata.createdAt", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongo: find unattached files: %w", err)
	}
	var docs []fileDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read unattached files: %w", err)
	}
	out := make([]store.File, len(docs))
	for i := range docs {
		out[i] = docs[i].file()
	}
	return out, nil
}

// fileReader is a seekable view of a GridFS file. A GridFS download stream
// only reads forward (it can Skip, not rewind), so Seek merely records the
// position and the next Read brings the stream there: skipping ahead on the
// open stream, or, to go back, reopening it and skipping from the start.
// Skipping still fetches the chunks it passes over. Seeking without reading
// (as http.ServeContent does to learn the size) costs nothing.
type fileReader struct {
	ctx  context.Context
	s    *Store
	id   string
	size int64

	ds    *mdriver.GridFSDownloadStream // nil once closed or before reopening
	dsPos int64                         // where ds will read next
	pos   int64                         // where the caller will read next

	closed bool
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("mongo: read from closed file")
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if err := r.position(); err != nil {
		return 0, err
	}
	n, err := r.ds.Read(p)
	r.dsPos += int64(n)
	r.pos = r.dsPos
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("mongo: read file %q: %w", r.id, err)
	}
	return n, err
}

// position brings the download stream to r.pos.
func (r *fileReader) position() error {
	if r.ds != nil && r.dsPos > r.pos {
		_ = r.ds.Close()
		r.ds = nil
	}
	if r.ds == nil {
		ds, err := r.s.openDownload(r.ctx, r.id)
		if err != nil {
			return err
		}
		r.ds, r.dsPos = ds, 0
	}
	if gap := r.pos - r.dsPos; gap > 0 {
		skipped, err := r.ds.Skip(gap)
		r.dsPos += skipped
		if err != nil {
			return fmt.Errorf("mongo: skip in file %q: %w", r.id, err)
		}
		if r.dsPos != r.pos {
			return fmt.Errorf("mongo: file %q ended at %d before offset %d", r.id, r.dsPos, r.pos)
		}
	}
	return nil
}

func (r *fileReader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, errors.New("mongo: seek in closed file")
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
		return 0, fmt.Errorf("mongo: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("mongo: seek to negative offset %d", abs)
	}
	r.pos = abs
	return abs, nil
}

func (r *fileReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.ds == nil {
		return nil
	}
	if err := r.ds.Close(); err != nil && !errors.Is(err, mdriver.ErrStreamClosed) {
		return fmt.Errorf("mongo: close file %q: %w", r.id, err)
	}
	return nil
}
