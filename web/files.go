package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
)

// FileStore is the part of the store the upload and download handlers use:
// the files themselves, what decides who may read one (the chats a user is
// in and whether a message there references the file), and the user's
// avatar field.
type FileStore interface {
	CreateFile(ctx context.Context, f *store.File, r io.Reader) error
	FileByID(ctx context.Context, id string) (*store.File, error)
	OpenFile(ctx context.Context, id string) (store.FileReader, error)
	DeleteFile(ctx context.Context, id string) error
	ChatsByMember(ctx context.Context, userID string) ([]store.Chat, error)
	FileReferenced(ctx context.Context, fileID string, chatIDs []string) (bool, error)
	UpdateUser(ctx context.Context, id string, upd store.UserUpdate) (*store.User, error)
}

const (
	defaultUploadMax = 25 << 20
	defaultAvatarMax = 5 << 20

	// multipartSlack is what a request may carry besides the file's bytes:
	// boundaries, part headers, a few small form fields. The file part is
	// held to the exact limit on its own; the slack only bounds the rest.
	multipartSlack = 64 << 10

	// drainMax bounds how much of a refused upload's remaining body is read
	// so the client can finish sending and read the answer on a connection
	// that stays usable; beyond it the connection is closed after the answer.
	drainMax = 256 << 10

	// maxNameBytes bounds a kept file name, as most file systems do.
	maxNameBytes = 255

	// cleanupTimeout bounds removals that must run even after the request
	// that caused them is gone.
	cleanupTimeout = 10 * time.Second
)

// rasterImages are the types served inline and accepted as avatars. SVG is
// not among them: it can carry script.
var rasterImages = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

func isRasterImage(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return rasterImages[strings.TrimSpace(mt)]
}

// errFileTooLarge marks the file part crossing its limit.
var errFileTooLarge = errors.New("file is over the size limit")

func (s *server) fileRoutes(r chi.Router) {
	r.Post("/files", s.uploadFile)
	r.Get("/files/{id}", s.getFile)
	r.Put("/me/avatar", s.putAvatar)
	r.Get("/users/{id}/avatar", s.getAvatar)
}

func (s *server) uploadFile(w http.ResponseWriter, r *http.Request) {
	f, err := s.receiveFile(w, r, uploadSpec{
		owner: identityFrom(r.Context()).UserID, kind: store.FileAttachment, limit: s.uploadMax,
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.NewFile(f))
}

func (s *server) putAvatar(w http.ResponseWriter, r *http.Request) {
	uid := identityFrom(r.Context()).UserID
	f, err := s.receiveFile(w, r, uploadSpec{
		owner: uid, kind: store.FileAvatar, limit: s.avatarMax, onlyImages: true,
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	u, err := s.setAvatar(r.Context(), uid, f.ID)
	if err != nil {
		s.discardFile(r.Context(), f.ID)
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewMe(u, s.presence.Online(uid)))
}

// setAvatar points the user at the new avatar file and removes the one it
// replaces. Replacements of one user's avatar are serialised on this node:
// two overlapping ones could otherwise both read the same old avatar, and the
// loser's new file would be left pointed at by nobody and, being an avatar,
// never swept.
func (s *server) setAvatar(ctx context.Context, uid, fileID string) (*store.User, error) {
	mu := &s.avatarMu[stripe(uid, len(s.avatarMu))]
	mu.Lock()
	defer mu.Unlock()
	before, err := s.users.UserByID(ctx, uid)
	if err != nil {
		return nil, err
	}
	u, err := s.files.UpdateUser(ctx, uid, store.UserUpdate{AvatarFileID: &fileID})
	if err != nil {
		return nil, err
	}
	if old := before.AvatarFileID; old != "" && old != fileID {
		s.discardFile(ctx, old)
	}
	return u, nil
}

func stripe(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// discardFile removes a file nothing points at any more. It outlives the
// request: a client hanging up must not leave the file behind.
func (s *server) discardFile(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.files.DeleteFile(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("remove unused file", "file", id, "err", err)
	}
}

type uploadSpec struct {
	owner      string
	kind       string
	limit      int64
	onlyImages bool
}

// receiveFile streams the one file of a multipart/form-data body (field
// "file") into the store, never holding it whole: the parts are read as they
// arrive (no ParseMultipartForm, which buffers to memory and disk), and the
// file part goes to the store chunk by chunk, held to the exact limit.
func (s *server) receiveFile(w http.ResponseWriter, r *http.Request, spec uploadSpec) (f *store.File, err error) {
	mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if perr != nil || mt != "multipart/form-data" {
		return nil, apperr.New(apperr.UnsupportedMediaType, `the body must be multipart/form-data with the file in field "file"`)
	}
	if params["boundary"] == "" {
		return nil, apperr.New(apperr.InvalidInput, "the multipart body has no boundary")
	}
	if r.ContentLength > spec.limit+multipartSlack {
		// Refused unread: the server then closes the connection after the
		// answer (and a client waiting on "Expect: 100-continue" never
		// sends the body at all).
		w.Header().Set("Connection", "close")
		return nil, tooLarge(spec.limit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, spec.limit+multipartSlack)
	defer func() {
		if err != nil {
			if f != nil {
				s.discardFile(r.Context(), f.ID)
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
			return f, bodyError(err, spec.limit)
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
		if f, err = s.storePart(r.Context(), part, spec); err != nil {
			return nil, err
		}
	}
	if f == nil {
		return nil, apperr.Field("file", "required")
	}
	return f, nil
}

// storePart sniffs the part's type from its first bytes, then streams it
// into a new file.
func (s *server) storePart(ctx context.Context, part *multipart.Part, spec uploadSpec) (*store.File, error) {
	body := &limitedPart{r: part, left: spec.limit}
	head := make([]byte, 512)       // all http.DetectContentType looks at
	n, _ := io.ReadFull(body, head) // short is fine: a small file
	if body.err != nil {
		return nil, bodyError(body.err, spec.limit)
	}
	head = head[:n]
	if n == 0 {
		return nil, apperr.Field("file", "must not be empty")
	}
	// The type comes from the bytes alone: the part's Content-Type and the
	// file name are the client's word, and a lie there (HTML sent as
	// image/png) would otherwise be served back as such.
	ctype := http.DetectContentType(head)
	if spec.onlyImages && !isRasterImage(ctype) {
		return nil, apperr.New(apperr.UnsupportedMediaType, "an avatar must be a png, jpeg, gif or webp image")
	}
	_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
	f := &store.File{
		ID:          store.NewID(),
		OwnerID:     spec.owner,
		Name:        cleanFileName(params["filename"]),
		ContentType: ctype,
		Kind:        spec.kind,
		CreatedAt:   time.Now().UTC(),
	}
	if err := s.files.CreateFile(ctx, f, io.MultiReader(bytes.NewReader(head), body)); err != nil {
		// The store removes what it wrote when the reader fails; what
		// remains is to say whose fault it was.
		if body.err != nil {
			return nil, bodyError(body.err, spec.limit)
		}
		return nil, err
	}
	return f, nil
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

// cleanFileName keeps a client's file name for display only: no path
// (clients send "C:\dir\x.png" or "../x"), no control or bidirectional
// override characters (which disguise "gpj.exe" as "exe.jpg"), valid UTF-8,
// and at most maxNameBytes, keeping the extension when it can.
func cleanFileName(raw string) string {
	name := strings.ToValidUTF8(raw, "\uFFFD")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control, unicode.Zl, unicode.Zp) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		name = ""
	}
	if len(name) > maxNameBytes {
		ext := path.Ext(name)
		if len(ext) > 16 || len(ext) == len(name) {
			ext = ""
		}
		name = strings.TrimSpace(cutUTF8(name[:len(name)-len(ext)], maxNameBytes-len(ext))) + ext
	}
	if name == "" {
		return "file"
	}
	return name
}

// cutUTF8 shortens s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// contentDisposition names the file for the browser (RFC 6266: an ASCII
// filename for old clients, filename* in UTF-8 per RFC 5987) and makes every
// type but a raster image a download, so nothing uploaded is ever rendered
// as a page of this origin.
func contentDisposition(f *store.File) string {
	disp := "attachment"
	if isRasterImage(f.ContentType) {
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

func (s *server) getFile(w http.ResponseWriter, r *http.Request) {
	f, err := s.readableFile(r.Context(), identityFrom(r.Context()).UserID, chi.URLParam(r, "id"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	// The bytes under an id never change, and whoever got them once may
	// keep them: a private cache may hold them a day.
	s.serveFile(w, r, f, "private, max-age=86400")
}

// readableFile is the file if userID may read it: its uploader, or a member
// of a chat with a message that references it. Anything else answers
// not_found, so a file's existence is not leaked.
func (s *server) readableFile(ctx context.Context, userID, id string) (*store.File, error) {
	notFound := apperr.New(apperr.NotFound, "no such file")
	if !store.ValidID(id) {
		return nil, notFound
	}
	f, err := s.files.FileByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if f.OwnerID == userID {
		return f, nil
	}
	chats, err := s.files.ChatsByMember(ctx, userID)
	if err != nil {
		return nil, err
	}
	if len(chats) == 0 {
		return nil, notFound
	}
	ids := make([]string, len(chats))
	for i := range chats {
		ids[i] = chats[i].ID
	}
	ok, err := s.files.FileReferenced(ctx, id, ids)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound
	}
	return f, nil
}

func (s *server) getAvatar(w http.ResponseWriter, r *http.Request) {
	notFound := apperr.New(apperr.NotFound, "no such avatar")
	uid := chi.URLParam(r, "id")
	if !store.ValidID(uid) {
		writeError(w, r, s.log, notFound)
		return
	}
	u, err := s.users.UserByID(r.Context(), uid)
	if errors.Is(err, store.ErrNotFound) {
		err = notFound
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if u.AvatarFileID == "" {
		writeError(w, r, s.log, notFound)
		return
	}
	f, err := s.files.FileByID(r.Context(), u.AvatarFileID)
	if errors.Is(err, store.ErrNotFound) { // replaced meanwhile
		err = notFound
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	// avatarUrl carries ?v=<fileId>, so that URL always means these
	// bytes and may be cached for good; any other URL of the avatar must
	// be revalidated (cheaply: the ETag) to see a replacement.
	cache := "private, no-cache"
	if r.URL.Query().Get("v") == f.ID {
		cache = "private, max-age=31536000, immutable"
	}
	s.serveFile(w, r, f, cache)
}

// serveFile streams f with http.ServeContent on the store's seekable reader,
// which brings Range (206, 416), conditional requests and Content-Length.
func (s *server) serveFile(w http.ResponseWriter, r *http.Request, f *store.File, cacheControl string) {
	rd, err := s.files.OpenFile(r.Context(), f.ID)
	if errors.Is(err, store.ErrNotFound) { // deleted since FileByID
		err = apperr.Wrap(apperr.NotFound, "no such file", err)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
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
	http.ServeContent(&contractErrorWriter{ResponseWriter: w, r: r, s: s}, r, "", f.CreatedAt, rd)
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
	var e *apperr.Error
	switch {
	case code == http.StatusRequestedRangeNotSatisfiable:
		e = &apperr.Error{Code: apperr.InvalidInput, Message: "the requested range is not satisfiable", Status: code}
	case code < 500:
		e = &apperr.Error{Code: apperr.InvalidInput, Message: http.StatusText(code), Status: code}
	default:
		c.s.log.Error("serving a file failed", "path", c.r.URL.Path, "status", code)
		e = apperr.New(apperr.Internal, "internal error")
	}
	// Content-Range (bytes */size) stays: it tells a 416's client the size.
	h := c.Header()
	for _, k := range []string{"Content-Disposition", "ETag", "Last-Modified", "Cache-Control", "Content-Length"} {
		h.Del(k)
	}
	writeJSON(c.ResponseWriter, e.HTTPStatus(), e.Body())
}

func (c *contractErrorWriter) Write(b []byte) (int, error) {
	if c.failed { // ServeContent's own text body
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *contractErrorWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
