// Package files owns uploaded files: storing an upload under the type its
// bytes show, who may read a file, avatars, the rules for attaching a file
// to a message, and the sweep of uploads never attached. A new rule about
// files (a per-user quota, say) belongs here. The web package only
// translates HTTP (multipart, Range, headers) into calls on the Service.
package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // image.DecodeConfig for avatars
	_ "image/jpeg" // image.DecodeConfig for avatars
	_ "image/png"  // image.DecodeConfig for avatars
	"io"
	"log/slog"
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/gabriel-vasile/mimetype"
	_ "golang.org/x/image/webp" // image.DecodeConfig for avatars

	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/str"
	"github.com/parley-chat/parley/internal/striped"
	"github.com/parley-chat/parley/store"
)

// Store is the part of the store files need: the files themselves, which
// chats carry a file, and the user's avatar field.
type Store interface {
	CreateFile(ctx context.Context, f *store.File, r io.Reader) error
	FileByID(ctx context.Context, id string) (*store.File, error)
	OpenFile(ctx context.Context, id string) (store.FileReader, error)
	DeleteFile(ctx context.Context, id string) error
	UnattachedBefore(ctx context.Context, t time.Time, limit int) ([]store.File, error)
	ChatsWithFile(ctx context.Context, fileID string, limit int) ([]string, error)
	UserByID(ctx context.Context, id string) (*store.User, error)
	UpdateUser(ctx context.Context, id string, upd store.UserUpdate) (*store.User, error)
}

// Membership answers whether a user is in a chat; *chat.Service implements
// it from the chats it caches.
type Membership interface {
	// MemberOfAny reports whether userID belongs to one of chatIDs.
	MemberOfAny(ctx context.Context, userID string, chatIDs []string) (bool, error)
}

// Limits bound one upload.
type Limits struct {
	Upload int64 // an attachment
	Avatar int64 // an avatar
}

// DefaultLimits are the configuration's defaults (25 MiB, 5 MiB).
var DefaultLimits = Limits{Upload: 25 << 20, Avatar: 5 << 20}

const (
	// maxNameBytes bounds a kept file name, as most file systems do.
	maxNameBytes = 255

	// cleanupTimeout bounds removals that must run even after the request
	// that caused them is gone.
	cleanupTimeout = 10 * time.Second

	// maxReferringChats bounds how many chats carrying a file are asked
	// about when someone other than its uploader reads it.
	maxReferringChats = 1000
)

// Service runs uploads, downloads and avatars.
type Service struct {
	st      Store
	members Membership
	limits  Limits
	log     *slog.Logger
	now     func() time.Time
	// avatarLocks serialise replacements of one user's avatar; see SetAvatar.
	avatarLocks *striped.Locks
}

// New returns the file service; zero limits take DefaultLimits.
func New(st Store, members Membership, limits Limits, log *slog.Logger) *Service {
	if limits.Upload <= 0 {
		limits.Upload = DefaultLimits.Upload
	}
	if limits.Avatar <= 0 {
		limits.Avatar = DefaultLimits.Avatar
	}
	return &Service{st: st, members: members, limits: limits, log: log, now: time.Now, avatarLocks: striped.New(16)}
}

// Limits returns the size bounds, so a transport can refuse early.
func (s *Service) Limits() Limits { return s.limits }

// rasterImages are the types served inline and accepted as avatars. SVG is
// not among them: it can carry script.
var rasterImages = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// sniffBytes is how much of an upload the type is read from: all that
// github.com/gabriel-vasile/mimetype looks at by default.
const sniffBytes = 3072

// avatarHeadBytes is how much of an avatar is read to decode its image
// header: a JPEG's size comes after its metadata (EXIF), up to 64 KiB.
const avatarHeadBytes = 64 << 10

// isRasterImage tells whether head (an upload's first bytes, typed ctype
// by them) is one of the raster images avatars may be: the type must be
// png, jpeg, gif or webp, and the image header must decode as one (its
// dimensions), so a file that only starts with the right magic bytes is
// refused too.
func isRasterImage(ctype string, head []byte) bool {
	if !IsRasterImage(ctype) {
		return false
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(head))
	return err == nil && cfg.Width > 0 && cfg.Height > 0 && "image/"+format == strings.Split(ctype, ";")[0]
}

// IsRasterImage tells whether a content type is one of the raster images
// that may be shown inline.
func IsRasterImage(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return rasterImages[strings.TrimSpace(mt)]
}

// Create stores r as a new file of kind (store.FileAttachment or
// store.FileAvatar) owned by owner. The type comes from the first bytes
// alone (github.com/gabriel-vasile/mimetype, which knows ~170 types where
// http.DetectContentType knows few): a client's Content-Type or file name
// is its word, and a lie there (HTML sent as image/png) would otherwise be
// served back as such. An error
// reading r is returned wrapped; the caller, which knows the reader, says
// whose fault it was.
func (s *Service) Create(ctx context.Context, owner, kind, name string, r io.Reader) (*store.File, error) {
	headSize := sniffBytes
	if kind == store.FileAvatar {
		headSize = avatarHeadBytes
	}
	head := make([]byte, headSize)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read the upload: %w", err)
	}
	head = head[:n]
	if n == 0 {
		return nil, apperr.Field("file", "must not be empty")
	}
	ctype := mimetype.Detect(head).String()
	if kind == store.FileAvatar && !isRasterImage(ctype, head) {
		return nil, apperr.New(apperr.UnsupportedMediaType, "an avatar must be a png, jpeg, gif or webp image")
	}
	f := &store.File{
		ID:          store.NewID(),
		OwnerID:     owner,
		Name:        CleanName(name),
		ContentType: ctype,
		Kind:        kind,
		CreatedAt:   s.now().UTC(),
	}
	// The store removes what it wrote when the reader fails.
	if err := s.st.CreateFile(ctx, f, io.MultiReader(bytes.NewReader(head), r)); err != nil {
		return nil, err
	}
	return f, nil
}

// Discard removes a file nothing points at any more. It outlives the
// request: a client hanging up must not leave the file behind.
func (s *Service) Discard(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.st.DeleteFile(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("remove unused file", "file", id, "err", err)
	}
}

// SetAvatar points the user at the new avatar file and removes the one it
// replaces; on failure the new file is removed. Replacements of one user's
// avatar are serialised on this node: two overlapping ones could otherwise
// both read the same old avatar, and the loser's new file would be left
// pointed at by nobody and, being an avatar, never swept.
func (s *Service) SetAvatar(ctx context.Context, uid, fileID string) (*store.User, error) {
	u, err := s.setAvatar(ctx, uid, fileID)
	if err != nil {
		s.Discard(ctx, fileID)
		return nil, err
	}
	return u, nil
}

func (s *Service) setAvatar(ctx context.Context, uid, fileID string) (*store.User, error) {
	mu := s.avatarLocks.For(uid)
	mu.Lock()
	defer mu.Unlock()
	before, err := s.st.UserByID(ctx, uid)
	if err != nil {
		return nil, err
	}
	u, err := s.st.UpdateUser(ctx, uid, store.UserUpdate{AvatarFileID: &fileID})
	if err != nil {
		return nil, err
	}
	if old := before.AvatarFileID; old != "" && old != fileID {
		s.Discard(ctx, old)
	}
	return u, nil
}

var errNoFile = apperr.New(apperr.NotFound, "no such file")

// find loads the record under id; a malformed or unknown id is notFound.
func find[T any](ctx context.Context, id string, load func(context.Context, string) (*T, error), notFound error) (*T, error) {
	if !store.ValidID(id) {
		return nil, notFound
	}
	v, err := load(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	return v, err
}

// Readable is the file if userID may read it: its uploader, or a member of
// a chat with a message that carries it (asked of the chat service, which
// caches membership). Anything else answers not_found, so a file's
// existence is not leaked.
func (s *Service) Readable(ctx context.Context, userID, id string) (*store.File, error) {
	f, err := find(ctx, id, s.st.FileByID, errNoFile)
	if err != nil {
		return nil, err
	}
	if f.OwnerID == userID {
		return f, nil
	}
	chats, err := s.st.ChatsWithFile(ctx, id, maxReferringChats)
	if err != nil {
		return nil, err
	}
	ok, err := s.members.MemberOfAny(ctx, userID, chats)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoFile
	}
	return f, nil
}

// Avatar is the avatar file of user uid; anyone signed in may read it.
func (s *Service) Avatar(ctx context.Context, uid string) (*store.File, error) {
	notFound := apperr.New(apperr.NotFound, "no such avatar")
	u, err := find(ctx, uid, s.st.UserByID, notFound)
	if err != nil {
		return nil, err
	}
	if u.AvatarFileID == "" {
		return nil, notFound
	}
	// Not found when it was replaced meanwhile.
	return find(ctx, u.AvatarFileID, s.st.FileByID, notFound)
}

// Open returns a seekable reader of f's bytes.
func (s *Service) Open(ctx context.Context, f *store.File) (store.FileReader, error) {
	rd, err := s.st.OpenFile(ctx, f.ID)
	if errors.Is(err, store.ErrNotFound) { // deleted since it was looked up
		return nil, apperr.Wrap(apperr.NotFound, "no such file", err)
	}
	return rd, err
}

// FileLookup finds a file's metadata.
type FileLookup interface {
	FileByID(ctx context.Context, id string) (*store.File, error)
}

// Attachments is the rule for attaching files to a message: every id names
// a distinct attachment-kind file of the sender's. It returns them as the
// message carries them.
func Attachments(ctx context.Context, st FileLookup, userID string, ids []string) ([]store.Attachment, error) {
	out := make([]store.Attachment, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return nil, apperr.Field("attachments", "the same file twice")
		}
		seen[id] = true
		if !store.ValidID(id) {
			return nil, apperr.Field("attachments", "unknown file "+str.Shorten(id, 24))
		}
		f, err := st.FileByID(ctx, id)
		// An avatar is not attachable: replacing it deletes the file, which
		// would leave the message pointing at nothing.
		if errors.Is(err, store.ErrNotFound) || (err == nil && (f.OwnerID != userID || f.Kind != store.FileAttachment)) {
			return nil, apperr.Field("attachments", "unknown file "+id)
		}
		if err != nil {
			return nil, fmt.Errorf("load attachment: %w", err)
		}
		out = append(out, store.Attachment{ID: f.ID, Name: f.Name, Size: f.Size, ContentType: f.ContentType})
	}
	return out, nil
}

// CleanName keeps a client's file name for display only: no path (clients
// send "C:\dir\x.png" or "../x"), no control or bidirectional override
// characters (which disguise "gpj.exe" as "exe.jpg"), valid UTF-8, and at
// most maxNameBytes, keeping the extension when it can.
func CleanName(raw string) string {
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
		name = strings.TrimSpace(str.Cut(name[:len(name)-len(ext)], maxNameBytes-len(ext))) + ext
	}
	if name == "" {
		return "file"
	}
	return name
}
