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
	// which records when the upload finished.
	CreatedAt bson.DateTime `bson:"createdAt"`
}

type fileDoc struct {
	ID        string   `bson:"_id"`
	Length    int64    `bson:"length"`
	ChunkSize int32    `bson:"chunkSize"`
	Filename  string   `bson:"filename"`
	Metadata  fileMeta `bson:"metadata"`
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

// chunkSize is GridFS's default, so both engines split files alike.
const chunkSize = 255 << 10

// CreateFile streams r into the GridFS bucket, writing the GridFS layout
// itself rather than through the driver's GridFSUploadStream: that stream
// allocates a 16 MiB buffer per upload and then builds the chunk documents of
// the whole buffer at once, so each concurrent upload would cost well over
// 16 MiB, and "no file is ever held whole in memory" would not hold for any
// file under 16 MiB. Here each chunk is read into one reused buffer and
// inserted as it arrives, one per insert: batching a few saves little time
// and multiplies the short-lived copies every layer (the driver's encoding,
// the server's decoding) makes of a batch. The documents are exactly the
// driver's ({_id, files_id, n, data} in uploads.chunks, then
// {_id, length, chunkSize, uploadDate, filename, metadata} in uploads.files),
// so OpenFile and DeleteFile keep using the driver's GridFS API and any
// GridFS tool reads these files. The file document is written last, so a
// file is visible only once complete; if anything fails before that, the
// chunks this upload wrote are removed: a failed upload leaves nothing behind.
func (s *Store) CreateFile(ctx context.Context, f *store.File, r io.Reader) (err error) {
	if f.ID == "" {
		f.ID = store.NewID()
	}
	if f.CreatedAt.IsZero() {
		f.CreatedAt = time.Now()
	}
	// Chunks are keyed by file id, so uploading under a taken id would mix
	// them with the existing file's.
	switch taken, err := exists(ctx, s.filesColl, bson.D{{Key: "_id", Value: f.ID}}); {
	case err != nil:
		return fmt.Errorf("mongo: check file id: %w", err)
	case taken:
		return &store.ConflictError{On: store.ConflictID}
	}

	// The clean-up removes chunks by their own ids, never by files_id
	// alone: should another upload ever race for the same file id, its
	// chunks must survive this one's failure.
	var written []bson.ObjectID
	done := false
	defer func() {
		if !done && len(written) > 0 {
			s.discardChunks(ctx, written)
		}
	}()

	buf := make([]byte, chunkSize)
	var size int64
	for n := int32(0); ; n++ {
		k, rerr := io.ReadFull(r, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("mongo: upload file: read: %w", rerr)
		}
		if k > 0 {
			id := bson.NewObjectID()
			written = append(written, id)
			if _, err := s.chunksColl.InsertOne(ctx, bson.D{
				{Key: "_id", Value: id},
				{Key: "files_id", Value: f.ID},
				{Key: "n", Value: n},
				{Key: "data", Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: buf[:k]}},
			}); err != nil {
				return fmt.Errorf("mongo: upload file: write chunk %d: %w", n, err)
			}
			size += int64(k)
		}
		if rerr != nil { // EOF: the body is complete
			break
		}
	}
	// A reader that ignores cancellation must not let a cancelled upload
	// complete.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mongo: upload file: %w", err)
	}

	_, err = s.filesColl.InsertOne(ctx, bson.D{
		{Key: "_id", Value: f.ID},
		{Key: "length", Value: size},
		{Key: "chunkSize", Value: int32(chunkSize)},
		{Key: "uploadDate", Value: toDate(time.Now())},
		{Key: "filename", Value: f.Name},
		{Key: "metadata", Value: fileMeta{
			OwnerID:     f.OwnerID,
			Kind:        f.Kind,
			ContentType: f.ContentType,
			CreatedAt:   toDate(f.CreatedAt),
		}},
	})
	if err != nil {
		if mdriver.IsDuplicateKeyError(err) {
			return &store.ConflictError{On: store.ConflictID}
		}
		return fmt.Errorf("mongo: upload file: write file document: %w", err)
	}
	done = true
	f.Size = size
	return nil
}

// discardChunks removes the chunks a failed upload wrote, even when the
// caller's context is what failed it. A chunk whose insert failed midway is
// named too: removing a document that does not exist is harmless.
func (s *Store) discardChunks(ctx context.Context, ids []bson.ObjectID) {
	// Longer than detached's usual bound: FerretDB does not push an $in
	// down, so this delete scans every chunk, and on a busy machine it ran
	// out of ten seconds with the chunks still there.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, _ = s.chunksColl.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
}

func (s *Store) FileByID(ctx context.Context, id string) (*store.File, error) {
	var d fileDoc
	if err := findOne(ctx, s.filesColl, bson.D{{Key: "_id", Value: id}}, &d, "file", id); err != nil {
		return nil, err
	}
	f := d.file()
	return &f, nil
}

// OpenFile returns a reader over the file's GridFS chunks that holds a
// couple of chunks at a time. The driver's download stream is not used: its
// cursor pulls batches of up to 16 MiB of chunks, so every download of a
// large file held that much, and it cannot seek back without starting over.
func (s *Store) OpenFile(ctx context.Context, id string) (store.FileReader, error) {
	var d fileDoc
	if err := findOne(ctx, s.filesColl, bson.D{{Key: "_id", Value: id}}, &d, "file", id); err != nil {
		return nil, err
	}
	r, err := store.NewChunkReader(&chunkSource{ctx: ctx, s: s, id: id}, d.Length, int64(d.ChunkSize))
	if err != nil {
		return nil, fmt.Errorf("mongo: open file %q: %w", id, err)
	}
	return r, nil
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

// DeleteOrphanFile removes the file document only while it is still an
// unattached attachment (one conditional delete, so a MarkAttached that
// wins the race keeps the file), then its chunks.
func (s *Store) DeleteOrphanFile(ctx context.Context, id string, t time.Time) error {
	res, err := s.filesColl.DeleteOne(ctx, bson.D{
		{Key: "_id", Value: id},
		{Key: "metadata.kind", Value: store.FileAttachment},
		{Key: "metadata.attached", Value: false},
		{Key: "metadata.createdAt", Value: bson.D{{Key: "$lt", Value: toDate(t)}}},
	})
	if err != nil {
		return fmt.Errorf("mongo: delete orphan file %q: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return notFound("orphan file", id)
	}
	if _, err := s.chunksColl.DeleteMany(ctx, bson.D{{Key: "files_id", Value: id}}); err != nil {
		return fmt.Errorf("mongo: delete chunks of orphan file %q: %w", id, err)
	}
	return nil
}

// SweepOrphanChunks removes chunks whose file document does not exist and
// that were written before t: what an upload left when its process died
// before writing the file document (which goes last, see CreateFile). The
// cut-off spares uploads still running on any node. It reports how many
// chunks it removed.
func (s *Store) SweepOrphanChunks(ctx context.Context, t time.Time) (int64, error) {
	before := bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: bson.NewObjectIDFromTimestamp(t)}}}}
	ids, err := s.chunksColl.Distinct(ctx, "files_id", before).Raw()
	if err != nil {
		return 0, fmt.Errorf("mongo: list chunked files: %w", err)
	}
	values, err := ids.Values()
	if err != nil {
		return 0, fmt.Errorf("mongo: read chunked files: %w", err)
	}
	var removed int64
	for _, v := range values {
		fid, ok := v.StringValueOK()
		if !ok {
			continue // not written by Parley
		}
		switch has, err := exists(ctx, s.filesColl, bson.D{{Key: "_id", Value: fid}}); {
		case err != nil:
			return removed, fmt.Errorf("mongo: check file %q: %w", fid, err)
		case has:
			continue
		}
		res, err := s.chunksColl.DeleteMany(ctx, append(bson.D{{Key: "files_id", Value: fid}}, before...))
		if err != nil {
			return removed, fmt.Errorf("mongo: delete orphan chunks of %q: %w", fid, err)
		}
		removed += res.DeletedCount
	}
	return removed, nil
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

// chunkSource walks one cursor over a GridFS file's chunks in order, a
// small batch at a time (by the (files_id, n) index GridFS keeps); a read
// elsewhere opens a new cursor at the chunk it lands in, so Range requests
// fetch only what they need.
type chunkSource struct {
	ctx  context.Context
	s    *Store
	id   string
	cur  *mdriver.Cursor
	curN int64 // the chunk number cur yields next
}

// chunkBatch bounds the chunks one cursor round trip brings: memory per
// reader stays near chunkBatch × 255 KiB.
const chunkBatch = 2

type chunkDoc struct {
	N    int64  `bson:"n"`
	Data []byte `bson:"data"`
}

func (c *chunkSource) Chunk(n, want int64) ([]byte, error) {
	if c.cur == nil || c.curN != n {
		_ = c.Close()
		cur, err := c.s.chunksColl.Find(c.ctx,
			bson.D{{Key: "files_id", Value: c.id}, {Key: "n", Value: bson.D{{Key: "$gte", Value: n}}}},
			options.Find().SetSort(bson.D{{Key: "n", Value: 1}}).SetBatchSize(chunkBatch))
		if err != nil {
			return nil, fmt.Errorf("mongo: read file %q: %w", c.id, err)
		}
		c.cur, c.curN = cur, n
	}
	if !c.cur.Next(c.ctx) {
		err := c.cur.Err()
		_ = c.Close()
		if err == nil {
			err = store.ErrNotFound // deleted while being read
		}
		return nil, fmt.Errorf("mongo: read chunk %d of file %q: %w", n, c.id, err)
	}
	var d chunkDoc
	if err := c.cur.Decode(&d); err != nil {
		return nil, fmt.Errorf("mongo: decode chunk %d of file %q: %w", n, c.id, err)
	}
	if d.N != n || int64(len(d.Data)) != want {
		return nil, fmt.Errorf("mongo: chunk %d of file %q is chunk %d of %d bytes, want %d", n, c.id, d.N, len(d.Data), want)
	}
	c.curN = n + 1
	return d.Data, nil
}

func (c *chunkSource) Close() error {
	if c.cur == nil {
		return nil
	}
	err := c.cur.Close(context.WithoutCancel(c.ctx))
	c.cur = nil
	return err
}
