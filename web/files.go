package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// Files is the file service as the upload and download handlers use it;
// *files.Service implements it.
type Files interface {
	Limits() files.Limits
	Create(ctx context.Context, owner, kind, name string, r io.Reader) (*store.File, error)
	Discard(ctx context.Context, id string)
	SetAvatar(ctx context.Context, uid, fileID string) (*store.User, error)
	Readable(ctx context.Context, userID, id string) (*store.File, error)
	Avatar(ctx context.Context, uid string) (*store.File, error)
	Open(ctx context.Context, f *store.File) (store.FileReader, error)
}

const (
	// multipartSlack is what a request may carry besides the file's bytes:
	// boundaries, part headers, a few small form fields. The file part is
	// held to the exact limit on its own; the slack only bounds the rest.
	multipartSlack = 64 << 10

	// drainMax bounds how much of a refused upload's remaining body is read
	// so the client can finish sending and read the answer on a connection
	// that stays usable; beyond it the connection is closed after the answer.
	drainMax = 256 << 10
)

// errFileTooLarge marks the file part crossing its limit.
var errFileTooLarge = errors.New("file is over the size limit")

func (s *server) fileRoutes(r chi.Router) {
	r.Post("/files", s.handle(s.uploadFile))
	r.Get("/files/{id}", s.handle(s.getFile))
	r.Put("/me/avatar", s.handle(s.putAvatar))
	r.Get("/users/{id}/avatar", s.handle(s.getAvatar))
}

func (s *server) uploadFile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.receiveFile(w, r, identityFrom(r.Context()).UserID, store.FileAttachment, s.files.Limits().Upload)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, wire.NewFile(f))
	return nil
}

func (s *server) putAvatar(w http.ResponseWriter, r *http.Request) error {
	uid := identityFrom(r.Context()).UserID
	f, err := s.receiveFile(w, r, uid, store.FileAvatar, s.files.Limits().Avatar)
	if err != nil {
		return err
	}
	u, err := s.files.SetAvatar(r.Context(), uid, f.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.NewMe(u, s.presence.Online(uid)))
	return nil
}

// receiveFile streams the one file of a multipart/form-data body (field
// "file") into the file service, never holding it whole: the parts are read
// as they arrive (no ParseMultipartForm, which buffers to memory and disk),
// and the file part goes on chunk by chunk, held to the exact limit.
func (s *server) receiveFile(w http.ResponseWriter, r *http.Request, owner, kind string, limit int64) (f *store.File, err error) {
	mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if perr != nil || mt != "multipart/form-data" {
		return nil, apperr.New(apperr.UnsupportedMediaType, `the body must be multipart/form-data with the file in field "file"`)
	}
	if params["boundary"] == "" {
		return nil, apperr.New(apperr.InvalidInput, "the multipart body has no boundary")
	}
	if r.ContentLength > limit+multipartSlack {
		// Refused unread: the server then closes the connection after the
		// answer (and a client waiting on "Expect: 100-continue" never
		// sends the body at all).
		w.Header().Set("Connection", "close")
		return nil, tooLarge(limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+multipartSlack)
	defer func() {
		if err != nil {
			if f != nil {
				s.files.Discard(r.Context(), f.ID)
				f = nil
			}
			drainBody(w, r.Body)
		}
	}()
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, "the multipart body is malformed", err)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF { // the final boundary; a body cut off before it is a wrapped io.EOF
			break
		}
		if err != nil {
			return f, bodyError(err, limit)
		}
		// Other form fields are skipped: NextPart reads past them, within
		// the body's limit.
		if part.FormName() != "file" && part.FileName() == "" {
			continue
		}
		if part.FormName() != "file" {
			return f, apperr.Field("file", `the file must be sent in field "file"`)
		}
		if f != nil {
			return f, apperr.Field("file", "exactly one file per request")
		}
		if f, err = s.storePart(r.Context(), part, owner, kind, limit); err != nil {
			return nil, err
		}
	}
	if f == nil {
		return nil, apperr.Field("file", "required")
	}
	return f, nil
}

// storePart hands one file part to the file service, held to limit.
func (s *server) storePart(ctx context.Context, part *multipart.Part, owner, kind string, limit int64) (*store.File, error) {
	body := &limitedPart{r: part, left: limit}
	_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	f, err := s.files.Create(ctx, owner, kind, params["filename"], body)
	// A failed read of the body is the client's doing, whatever the service
	// made of it.
	if body.err != nil {
		if err == nil {
			s.files.Discard(ctx, f.ID)
		}
		return nil, bodyError(body.err, limit)
	}
	return f, err
}

// limitedPart reads a file part and fails as soon as it yields more than
// left bytes. It keeps the first error of the body, so a failed upload can
// be told apart from a failing store, and wraps it: a part cut off ends in
// io.ErrUnexpectedEOF, which a store reading with io.ReadFull would take for
// a short last chunk, and so for a complete file.
type limitedPart struct {
	r    io.Reader
	left int64
	err  error
}

func (p *limitedPart) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	if int64(n) > p.left {
		p.err = errFileTooLarge
		return 0, p.err
	}
	p.left -= int64(n)
	if err != nil && err != io.EOF {
		p.err = fmt.Errorf("read the upload: %w", err)
		return n, p.err
	}
	return n, err
}

// bodyError is the answer to a request body that could not be read: too
// large (the file part or the whole body), or not well-formed multipart, or
// cut off.
func bodyError(err error, limit int64) error {
	var mbe *http.MaxBytesError
	if errors.Is(err, errFileTooLarge) || errors.As(err, &mbe) {
		return tooLarge(limit)
	}
	return apperr.Wrap(apperr.InvalidInput, "the multipart body is malformed or was cut off", err)
}

func tooLarge(limit int64) error {
	return apperr.New(apperr.TooLarge, "the file is larger than "+sizeString(limit))
}

func sizeString(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// drainBody reads a bounded amount of a refused upload's remaining body.
// An HTTP/1 server that answers and then closes while the client is still
// sending makes the client's kernel answer the leftover data with a reset,
// and the client may then lose the answer it had not read yet. Reading what
// is left (the usual case: the limit was crossed near the end) keeps the
// connection clean; when more is left, Connection: close has net/http
// half-close and linger before closing, which gives the client time to read.
func drainBody(w http.ResponseWriter, body io.Reader) {
	if _, err := io.CopyN(io.Discard, body, drainMax); err == nil {
		w.Header().Set("Connection", "close")
	}
}

// contentDisposition names the file for the browser (RFC 6266: an ASCII
// filename for old clients, filename* in UTF-8 per RFC 5987) and makes every
// type but a raster image a download, so nothing uploaded is ever rendered
// as a page of this origin.
func contentDisposition(f *store.File) string {
	disp := "attachment"
	if files.IsRasterImage(f.ContentType) {
		disp = "inline"
	}
	var ascii, ext strings.Builder
	for _, r := range f.Name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			ascii.WriteByte('_')
		} else {
			ascii.WriteRune(r)
		}
	}
	for _, b := range []byte(f.Name) {
		if isAttrChar(b) {
			ext.WriteByte(b)
		} else {
			fmt.Fprintf(&ext, "%%%02X", b)
		}
	}
	return disp + `; filename="` + ascii.String() + `"; filename*=UTF-8''` + ext.String()
}

// isAttrChar is RFC 5987's attr-char: what filename* carries unescaped.
func isAttrChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", b) >= 0
}

func (s *server) getFile(w http.ResponseWriter, r *http.Request) error {
	f, err := s.files.Readable(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	// The bytes under an id never change, and whoever got them once may
	// keep them: a private cache may hold them a day.
	return s.serveFile(w, r, f, "private, max-age=86400")
}

func (s *server) getAvatar(w http.ResponseWriter, r *http.Request) error {
	f, err := s.files.Avatar(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	// avatarUrl carries ?v=<fileId>, so that URL always means these
	// bytes and may be cached for good; any other URL of the avatar must
	// be revalidated (cheaply: the ETag) to see a replacement.
	cache := "private, no-cache"
	if r.URL.Query().Get("v") == f.ID {
		cache = "private, max-age=31536000, immutable"
	}
	return s.serveFile(w, r, f, cache)
}

// serveFile streams f with http.ServeContent on the store's seekable reader,
// which brings Range (206, 416), conditional requests and Content-Length.
func (s *server) serveFile(w http.ResponseWriter, r *http.Request, f *store.File, cacheControl string) error {
	rd, err := s.files.Open(r.Context(), f)
	if err != nil {
		return err
	}
	defer rd.Close()
	ctype := f.ContentType
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", contentDisposition(f))
	// Should a browser render a download after all, it gets no script and
	// no access to this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("ETag", `"`+f.ID+`"`)
	h.Set("Cache-Control", cacheControl)
	if rg := r.Header.Get("Range"); rg != "" {
		r.Header.Set("Range", normaliseRange(rg, f.Size))
	}
	http.ServeContent(&contractErrorWriter{ResponseWriter: w, r: r, s: s}, r, "", f.CreatedAt, rd)
	return nil
}

// contractErrorWriter turns the plain-text errors http.ServeContent writes
// (416 for an unsatisfiable Range, above all) into the contract's shape.
type contractErrorWriter struct {
	http.ResponseWriter
	r      *http.Request
	s      *server
	failed bool
}

func (c *contractErrorWriter) WriteHeader(code int) {
	if code < 400 || c.failed {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	c.failed = true
	var err error
	switch {
	case code == http.StatusRequestedRangeNotSatisfiable:
		err = &apperr.Error{Code: apperr.InvalidInput, Message: "the requested range is not satisfiable", Status: code}
	case code < 500:
		err = &apperr.Error{Code: apperr.InvalidInput, Message: http.StatusText(code), Status: code}
	default:
		err = fmt.Errorf("serving a file failed with status %d", code) // logged, answered internal
	}
	// Content-Range (bytes */size) stays: it tells a 416's client the size.
	h := c.Header()
	for _, k := range []string{"Content-Disposition", "ETag", "Last-Modified", "Cache-Control", "Content-Length"} {
		h.Del(k)
	}
	writeError(c.ResponseWriter, c.r, c.s.log, err)
}

func (c *contractErrorWriter) Write(b []byte) (int, error) {
	if c.failed { // ServeContent's own text body
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *contractErrorWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
