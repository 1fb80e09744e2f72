package files_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/testenv/stack"
	"github.com/parley-chat/parley/store"
)

const (
	uploadLimit = 25 << 20 // UPLOAD_MAX_BYTES's default
	avatarLimit = 5 << 20  // AVATAR_MAX_BYTES's default
)

// part is one part of a multipart upload; its content is a reader, so a
// test never holds a large file in memory.
type part struct {
	field, filename, contentType string
	body                         io.Reader
	size                         int64
}

func filePart(name, contentType string, data []byte) part {
	return part{field: "file", filename: name, contentType: contentType, body: bytes.NewReader(data), size: int64(len(data))}
}

// generated is n deterministic pseudo-random bytes, made as they are read.
func generated(seed byte, n int64) io.Reader {
	var key [32]byte
	key[0] = seed
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// multipartBody lays the parts out as multipart/form-data, streaming each
// part's content, and says the exact length of the whole.
func multipartBody(parts ...part) (contentType string, body io.Reader, length int64) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	var readers []io.Reader
	flush := func() {
		b := bytes.Clone(buf.Bytes())
		buf.Reset()
		readers = append(readers, bytes.NewReader(b))
		length += int64(len(b))
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		params := map[string]string{"name": p.field}
		if p.filename != "" {
			params["filename"] = p.filename
		}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", params))
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		if _, err := mw.CreatePart(h); err != nil {
			panic(err)
		}
		flush()
		readers = append(readers, p.body)
		length += p.size
	}
	_ = mw.Close()
	flush()
	return mw.FormDataContentType(), io.MultiReader(readers...), length
}

// upload sends parts to path; chunked leaves the length out, as a client
// streaming from a pipe does.
func upload(t *testing.T, method, url, token string, chunked bool, parts ...part) stack.Response {
	t.Helper()
	ctype, body, length := multipartBody(parts...)
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	req.ContentLength = length
	if chunked {
		req.ContentLength = -1
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return stack.Do(t, req)
}

func uploadFile(t *testing.T, srv *stack.Server, token string, p part) map[string]any {
	t.Helper()
	r := upload(t, "POST", srv.URL+"/api/files", token, false, p)
	if r.Status != http.StatusCreated {
		t.Fatalf("upload %q: %d %s", p.filename, r.Status, r.Raw)
	}
	for _, k := range []string{"id", "name", "size", "contentType", "createdAt"} {
		if r.Body[k] == nil {
			t.Fatalf("file object lacks %q: %s", k, r.Raw)
		}
	}
	return r.Body
}

func get(t *testing.T, url, token string, header ...string) stack.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return stack.Do(t, req)
}

func wantError(t *testing.T, what string, r stack.Response, status int, code string) {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Fatalf("%s: got %d %s, want %d %s", what, r.Status, r.Raw, status, code)
	}
}

func pngBytes(t *testing.T, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, c)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 2, 2)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// webpBytes is a 1x1 lossless WebP image (no encoder in the standard
// library or x/image).
func webpBytes(t *testing.T) []byte {
	b, err := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gifBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black, color.White}), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// storedBlobs counts the file records and chunks in the engine itself, the
// incomplete ones included, so a half-written upload cannot hide.
func storedBlobs(t *testing.T, srv *stack.Server) (files, chunks int64) {
	t.Helper()
	ctx := t.Context()
	if srv.MongoURI != "" {
		c, err := mdriver.Connect(options.Client().ApplyURI(srv.MongoURI))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(context.Background())
		db := c.Database(srv.MongoDB)
		if files, err = db.Collection("uploads.files").CountDocuments(ctx, bson.D{}); err != nil {
			t.Fatal(err)
		}
		if chunks, err = db.Collection("uploads.chunks").CountDocuments(ctx, bson.D{}); err != nil {
			t.Fatal(err)
		}
		return files, chunks
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.DataDir, "parley.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM file_chunks)`).Scan(&files, &chunks); err != nil {
		t.Fatal(err)
	}
	return files, chunks
}

// sameStream compares two streams block by block, never holding either.
func sameStream(t *testing.T, what string, got, want io.Reader) {
	t.Helper()
	gb, wb := make([]byte, 64<<10), make([]byte, 64<<10)
	var off int64
	for {
		wn, werr := io.ReadFull(want, wb)
		gn, gerr := io.ReadFull(got, gb[:wn])
		if gn < wn {
			t.Fatalf("%s: ends at byte %d, want %d (%v)", what, off+int64(gn), off+int64(wn), gerr)
		}
		if !bytes.Equal(gb[:wn], wb[:wn]) {
			for i := range wn {
				if gb[i] != wb[i] {
					t.Fatalf("%s: first difference at byte %d", what, off+int64(i))
				}
			}
		}
		off += int64(wn)
		if werr != nil {
			if n, _ := io.ReadFull(got, gb[:1]); n != 0 {
				t.Fatalf("%s: longer than the %d bytes sent", what, off)
			}
			return
		}
	}
}

// heapGrowth runs fn while sampling the heap, and returns how far its peak
// rose above the heap live before fn. The garbage collector runs at
// GOGC=10 meanwhile: at the default of 100 the heap may legitimately grow by
// as much as is live before a collection, which would drown what is
// measured here (live memory held by the upload path) in garbage.
func heapGrowth(fn func()) (peak uint64) {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		top := base
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapAlloc)
			select {
			case <-stop:
				done <- top - base
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	return <-done
}

func TestUploadRoundTrip(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "up")
		t.Run("small", func(t *testing.T) {
			data := []byte("hello, parley\n")
			f := uploadFile(t, srv, a.Token, filePart("hello.txt", "text/plain", data))
			if f["name"] != "hello.txt" || f["size"] != float64(len(data)) || f["contentType"] != "text/plain; charset=utf-8" {
				t.Fatalf("file object: %v", f)
			}
			r := get(t, srv.URL+"/api/files/"+f["id"].(string), a.Token)
			if r.Status != 200 || !bytes.Equal(r.Raw, data) {
				t.Fatalf("download: %d %q", r.Status, r.Raw)
			}
			for k, want := range map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"X-Content-Type-Options": "nosniff",
				"Content-Length":         strconv.Itoa(len(data)),
				"ETag":                   `"` + f["id"].(string) + `"`,
				"Content-Disposition":    `attachment; filename="hello.txt"; filename*=UTF-8''hello.txt`,
				"Accept-Ranges":          "bytes",
			} {
				if got := r.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "private") {
				t.Errorf("Cache-Control %q is not private", cc)
			}
			if r := get(t, srv.URL+"/api/files/"+f["id"].(string), a.Token, "If-None-Match", r.Header.Get("ETag")); r.Status != http.StatusNotModified {
				t.Errorf("If-None-Match with the ETag: %d", r.Status)
			}
		})
		t.Run("25 MiB, streamed", func(t *testing.T) {
			var r stack.Response
			growth := heapGrowth(func() {
				r = upload(t, "POST", srv.URL+"/api/files", a.Token, false,
					part{field: "file", filename: "big.bin", body: generated(1, uploadLimit), size: uploadLimit})
			})
			if r.Status != http.StatusCreated || r.Body["size"] != float64(uploadLimit) {
				t.Fatalf("upload: %d %s", r.Status, r.Raw)
			}
			t.Logf("heap growth during a %d MiB upload: %.1f MiB", uploadLimit>>20, float64(growth)/(1<<20))
			if growth > 8<<20 {
				t.Errorf("the heap grew by %.1f MiB during a %d MiB upload: the file is being buffered", float64(growth)/(1<<20), uploadLimit>>20)
			}
			req, _ := http.NewRequest("GET", srv.URL+"/api/files/"+r.Body["id"].(string), nil)
			req.Header.Set("Authorization", "Bearer "+a.Token)
			// Logged, not asserted: downloads go through the engines'
			// readers, whose memory is their own business.
			growth = heapGrowth(func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 || resp.ContentLength != uploadLimit || resp.Header.Get("Content-Type") != "application/octet-stream" {
					t.Fatalf("download: %d, length %d, type %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Type"))
				}
				sameStream(t, "downloaded file", resp.Body, generated(1, uploadLimit))
			})
			t.Logf("heap growth during its download: %.1f MiB", float64(growth)/(1<<20))
		})
	})
}

func TestUploadTooLarge(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "big")
		uploadFile(t, srv, a.Token, filePart("kept.txt", "", []byte("kept"))) // something that must stay
		files0, chunks0 := storedBlobs(t, srv)
		over := func(seed byte, n int64) part {
			return part{field: "file", filename: "over.bin", body: generated(seed, n), size: n}
		}
		// Each of these reaches the client as the contract's 413: do fails
		// the test on a transport error such as a reset connection.
		t.Run("one byte over, with Content-Length", func(t *testing.T) {
			r := upload(t, "POST", srv.URL+"/api/files", a.Token, false, over(2, uploadLimit+1))
			wantError(t, "25 MiB + 1", r, 413, "too_large")
		})
		t.Run("one byte over, chunked", func(t *testing.T) {
			r := upload(t, "POST", srv.URL+"/api/files", a.Token, true, over(3, uploadLimit+1))
			wantError(t, "25 MiB + 1, chunked", r, 413, "too_large")
		})
		t.Run("declared far over", func(t *testing.T) {
			r := upload(t, "POST", srv.URL+"/api/files", a.Token, false, over(4, 2*uploadLimit))
			wantError(t, "50 MiB", r, 413, "too_large")
		})
		t.Run("avatar one byte over", func(t *testing.T) {
			img := pngBytes(t, color.White)
			p := part{field: "file", filename: "me.png", body: io.MultiReader(bytes.NewReader(img), generated(5, avatarLimit+1-int64(len(img)))), size: avatarLimit + 1}
			r := upload(t, "PUT", srv.URL+"/api/me/avatar", a.Token, false, p)
			wantError(t, "avatar 5 MiB + 1", r, 413, "too_large")
			if me := stack.Call(t, "GET", srv.URL+"/api/me", a.Token, nil); me.Body["avatarUrl"] != nil {
				t.Fatalf("a refused avatar was set: %s", me.Raw)
			}
		})
		t.Run("chunked, far over", func(t *testing.T) {
			if srv.MongoURI != "" {
				// What is tested is HTTP, alike for both engines; the
				// engine's clean-up is covered above.
				t.Skip("covered with sqlite")
			}
			// The client is still sending when the answer comes.
			r := upload(t, "POST", srv.URL+"/api/files", a.Token, true, over(6, 2*uploadLimit))
			wantError(t, "50 MiB, chunked", r, 413, "too_large")
		})
		if files, chunks := storedBlobs(t, srv); files != files0 || chunks != chunks0 {
			t.Fatalf("refused uploads left %d file records and %d chunks behind", files-files0, chunks-chunks0)
		}
		orphans, err := srv.Store.UnattachedBefore(t.Context(), time.Now().Add(1000*time.Hour), 100)
		if err != nil || len(orphans) != 1 || orphans[0].Name != "kept.txt" {
			t.Fatalf("files in the store after refused uploads: %v, %v; want only kept.txt", orphans, err)
		}
	})
}

func TestUploadValidation(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "val")
		files0, chunks0 := storedBlobs(t, srv)
		url := srv.URL + "/api/files"
		text := func(field, value string) part {
			return part{field: field, body: strings.NewReader(value), size: int64(len(value))}
		}
		wantError(t, "no file part", upload(t, "POST", url, a.Token, false, text("note", "hi")), 400, "invalid_input")
		wantError(t, "file in another field", upload(t, "POST", url, a.Token, false,
			part{field: "upload", filename: "x.txt", body: strings.NewReader("x"), size: 1}), 400, "invalid_input")
		wantError(t, "empty file", upload(t, "POST", url, a.Token, false, filePart("empty.txt", "", nil)), 400, "invalid_input")
		wantError(t, "two files", upload(t, "POST", url, a.Token, false,
			filePart("one.txt", "", []byte("one")), filePart("two.txt", "", []byte("two"))), 400, "invalid_input")
		wantError(t, "empty avatar", upload(t, "PUT", srv.URL+"/api/me/avatar", a.Token, false, filePart("me.png", "", nil)), 400, "invalid_input")
		wantError(t, "JSON body", stack.Call(t, "POST", url, a.Token, map[string]any{"file": "x"}), 415, "unsupported_media_type")
		raw := func(ctype, body string) stack.Response {
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Authorization", "Bearer "+a.Token)
			return stack.Do(t, req)
		}
		wantError(t, "raw image body", raw("image/png", string(pngBytes(t, color.Black))), 415, "unsupported_media_type")
		wantError(t, "no Content-Type", raw("", "x"), 415, "unsupported_media_type")
		wantError(t, "multipart without a boundary", raw("multipart/form-data", "x"), 400, "invalid_input")
		wantError(t, "multipart cut off", raw("multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n\r\nsome bytes and then noth"), 400, "invalid_input")
		wantError(t, "no credentials", upload(t, "POST", url, "", false, filePart("x.txt", "", []byte("x"))), 401, "unauthorized")
		if files, chunks := storedBlobs(t, srv); files != files0 || chunks != chunks0 {
			t.Fatalf("refused uploads left %d file records and %d chunks behind", files-files0, chunks-chunks0)
		}
		// Other form fields beside the file are no reason to refuse it.
		r := upload(t, "POST", url, a.Token, false, text("caption", "a cat"), filePart("cat.txt", "", []byte("meow")))
		if r.Status != 201 || r.Body["name"] != "cat.txt" {
			t.Fatalf("file with a caption field: %d %s", r.Status, r.Raw)
		}
	})
}

func TestFilesContentType(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "sniff")
		img := pngBytes(t, color.Black)
		html := []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>")
		svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
		cases := []struct {
			name                 string
			p                    part
			wantType, wantInline string
		}{
			{"PNG sent as text/plain named x.txt", filePart("x.txt", "text/plain", img), "image/png", "inline"},
			{"HTML sent as image/png named x.png", filePart("x.png", "image/png", html), "text/html; charset=utf-8", "attachment"},
			{"an .html file", filePart("page.html", "text/html", html), "text/html; charset=utf-8", "attachment"},
			{"SVG", filePart("logo.svg", "image/svg+xml", svg), "image/svg+xml", "attachment"},
			{"WebP", filePart("x.bin", "", webpBytes(t)), "image/webp", "inline"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := uploadFile(t, srv, a.Token, c.p)
				if f["contentType"] != c.wantType {
					t.Fatalf("contentType %v, want %s", f["contentType"], c.wantType)
				}
				r := get(t, srv.URL+"/api/files/"+f["id"].(string), a.Token)
				if r.Status != 200 || r.Header.Get("Content-Type") != c.wantType || r.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatalf("download: %d, Content-Type %q, X-Content-Type-Options %q", r.Status, r.Header.Get("Content-Type"), r.Header.Get("X-Content-Type-Options"))
				}
				disp, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
				if err != nil || disp != c.wantInline || params["filename"] != c.p.filename {
					t.Fatalf("Content-Disposition %q: %v %v %v, want %s with the file name", r.Header.Get("Content-Disposition"), disp, params, err, c.wantInline)
				}
			})
		}
		t.Run("file names are cleaned", func(t *testing.T) {
			f := uploadFile(t, srv, a.Token, filePart("../../etc/pa\x01ss\u202ewd\r\n.txt", "", []byte("x")))
			if f["name"] != "passwd.txt" {
				t.Fatalf("name %q, want passwd.txt", f["name"])
			}
			f = uploadFile(t, srv, a.Token, filePart("résumé «final».pdf", "", []byte("%PDF-1.4\n")))
			r := get(t, srv.URL+"/api/files/"+f["id"].(string), a.Token)
			_, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
			if f["name"] != "résumé «final».pdf" || f["contentType"] != "application/pdf" || err != nil || params["filename"] != "résumé «final».pdf" {
				t.Fatalf("name %q, type %q, Content-Disposition %q (%v)", f["name"], f["contentType"], r.Header.Get("Content-Disposition"), err)
			}
		})
	})
}

func TestFilesAccess(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		alice, bob, carol, dave := stack.Signup(t, srv.URL, "alice"), stack.Signup(t, srv.URL, "bob"), stack.Signup(t, srv.URL, "carol"), stack.Signup(t, srv.URL, "dave")
		chat := func(owner stack.Account, body map[string]any) string {
			r := stack.Call(t, "POST", srv.URL+"/api/chats", owner.Token, body)
			if r.Status != 201 {
				t.Fatalf("create chat: %d %s", r.Status, r.Raw)
			}
			return r.Body["id"].(string)
		}
		direct := chat(alice, map[string]any{"type": "direct", "userId": bob.ID})
		// dave shares a chat with alice, but not the one the file is in.
		chat(alice, map[string]any{"type": "group", "name": "other", "memberIds": []string{dave.ID}})

		data := []byte("the quarterly numbers")
		f := uploadFile(t, srv, alice.Token, filePart("numbers.txt", "", data))
		id := f["id"].(string)
		if r := get(t, srv.URL+"/api/files/"+id, bob.Token); r.Status != 404 {
			t.Fatalf("bob before it was sent to him: %d %s", r.Status, r.Raw)
		}
		r := stack.Call(t, "POST", srv.URL+"/api/chats/"+direct+"/messages", alice.Token, map[string]any{"attachments": []string{id}})
		if r.Status != 201 {
			t.Fatalf("send with attachment: %d %s", r.Status, r.Raw)
		}
		atts, _ := r.Body["attachments"].([]any)
		want := map[string]any{"id": id, "name": "numbers.txt", "size": float64(len(data)), "contentType": "text/plain; charset=utf-8"}
		if len(atts) != 1 || fmt.Sprint(atts[0]) != fmt.Sprint(want) || r.Body["text"] != nil {
			t.Fatalf("message: %s, want attachments [%v] and text null", r.Raw, want)
		}

		for _, c := range []struct {
			name, path, token string
			status            int
			code              string
		}{
			{"uploader", id, alice.Token, 200, ""},
			{"member of the chat it was sent to", id, bob.Token, 200, ""},
			{"member of another chat with the uploader", id, dave.Token, 404, "not_found"},
			{"user with no relation", id, carol.Token, 404, "not_found"},
			{"malformed id", "zzz", alice.Token, 404, "not_found"},
			{"unknown id", store.NewID(), alice.Token, 404, "not_found"},
			{"no credentials", id, "", 401, "unauthorized"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := get(t, srv.URL+"/api/files/"+c.path, c.token)
				if c.status == 200 {
					if r.Status != 200 || !bytes.Equal(r.Raw, data) {
						t.Fatalf("got %d %q", r.Status, r.Raw)
					}
					return
				}
				wantError(t, c.name, r, c.status, c.code)
			})
		}

		t.Run("someone else's file cannot be attached", func(t *testing.T) {
			bobs := uploadFile(t, srv, bob.Token, filePart("bobs.txt", "", []byte("bob's")))["id"].(string)
			for _, ids := range [][]string{{bobs}, {store.NewID()}, {"zzz"}} {
				r := stack.Call(t, "POST", srv.URL+"/api/chats/"+direct+"/messages", alice.Token, map[string]any{"attachments": ids})
				wantError(t, fmt.Sprintf("attachments %v", ids), r, 400, "invalid_input")
			}
			// Nor does a chat member get to read the refused file.
			if r := get(t, srv.URL+"/api/files/"+bobs, alice.Token); r.Status != 404 {
				t.Fatalf("alice reading bob's unsent file: %d", r.Status)
			}
		})
	})
}

func TestRangeRequests(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a := stack.Signup(t, srv.URL, "range")
		data, _ := io.ReadAll(generated(9, 600<<10)) // three GridFS chunks
		id := uploadFile(t, srv, a.Token, filePart("data.bin", "", data))["id"].(string)
		url := srv.URL + "/api/files/" + id
		size := len(data)
		for _, c := range []struct {
			rng        string
			start, end int // inclusive
		}{
			{"bytes=0-9", 0, 9},
			{"bytes=-10", size - 10, size - 1},
			{"bytes=261115-261124", 261115, 261124}, // across the first chunk boundary
			{"bytes=600000-", 600000, size - 1},
		} {
			t.Run(c.rng, func(t *testing.T) {
				r := get(t, url, a.Token, "Range", c.rng)
				wantRange := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, size)
				if r.Status != 206 || r.Header.Get("Content-Range") != wantRange || r.Header.Get("Content-Length") != strconv.Itoa(c.end-c.start+1) {
					t.Fatalf("got %d, Content-Range %q, Content-Length %q; want 206, %q", r.Status, r.Header.Get("Content-Range"), r.Header.Get("Content-Length"), wantRange)
				}
				if !bytes.Equal(r.Raw, data[c.start:c.end+1]) {
					t.Fatal("wrong bytes")
				}
			})
		}
		for _, rng := range []string{"bytes=999999999-", "bytes=-0", "bytes=-0,999999999-"} {
			t.Run("unsatisfiable "+rng, func(t *testing.T) {
				r := get(t, url, a.Token, "Range", rng)
				wantError(t, rng, r, 416, "invalid_input")
				if got := r.Header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", size) {
					t.Errorf("Content-Range %q", got)
				}
				if msg, _ := r.Body["error"].(map[string]any)["message"].(string); msg == "" {
					t.Errorf("no message: %s", r.Raw)
				}
			})
		}
		// Many ranges, overlapping or not, are coalesced into the one range
		// that spans them: never a multipart body larger than the file.
		for _, c := range []struct {
			rng        string
			start, end int
		}{
			{"bytes=" + strings.Repeat("0-1023,", 200) + "0-1023", 0, 1023},
			{"bytes=" + strings.Repeat("0-9,100-109,", 50) + "-10", 0, size - 1},
			{"bytes=10-19,15-29,40-49", 10, 49},
		} {
			t.Run(fmt.Sprintf("coalesced %d..%d", c.start, c.end), func(t *testing.T) {
				r := get(t, url, a.Token, "Range", c.rng)
				wantRange := fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, size)
				if r.Status != 206 || r.Header.Get("Content-Range") != wantRange || len(r.Raw) > size {
					t.Fatalf("got %d, Content-Range %q, %d bytes; want 206 %q", r.Status, r.Header.Get("Content-Range"), len(r.Raw), wantRange)
				}
				if !bytes.Equal(r.Raw, data[c.start:c.end+1]) {
					t.Fatal("wrong bytes")
				}
			})
		}
	})
}

func TestAvatar(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		alice, bob := stack.Signup(t, srv.URL, "face"), stack.Signup(t, srv.URL, "viewer")
		put := func(p part) stack.Response { return upload(t, "PUT", srv.URL+"/api/me/avatar", alice.Token, false, p) }
		avatarID := func(me stack.Response) string {
			u, _ := me.Body["avatarUrl"].(string)
			prefix := "/api/users/" + alice.ID + "/avatar?v="
			if !strings.HasPrefix(u, prefix) || !store.ValidID(u[len(prefix):]) {
				t.Fatalf("avatarUrl %q, want %s<fileId>", u, prefix)
			}
			return u[len(prefix):]
		}

		first := pngBytes(t, color.Black)
		r := put(filePart("me.png", "application/octet-stream", first))
		if r.Status != 200 || r.Body["id"] != alice.ID || r.Body["email"] != alice.Email {
			t.Fatalf("set avatar: %d %s", r.Status, r.Raw)
		}
		id1 := avatarID(r)
		avatarURL := r.Body["avatarUrl"].(string)
		url := srv.URL + avatarURL

		t.Run("any signed-in user reads it", func(t *testing.T) {
			r := get(t, url, bob.Token)
			if r.Status != 200 || !bytes.Equal(r.Raw, first) || r.Header.Get("Content-Type") != "image/png" ||
				r.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(r.Header.Get("Content-Disposition"), "inline") {
				t.Fatalf("got %d %v", r.Status, r.Header)
			}
			if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "private") || !strings.Contains(cc, "max-age") {
				t.Errorf("versioned avatar URL: Cache-Control %q", cc)
			}
			if r := get(t, srv.URL+"/api/users/"+alice.ID+"/avatar", bob.Token); r.Status != 200 || !strings.Contains(r.Header.Get("Cache-Control"), "no-cache") {
				t.Errorf("unversioned avatar URL: %d, Cache-Control %q", r.Status, r.Header.Get("Cache-Control"))
			}
			if u := stack.Call(t, "GET", srv.URL+"/api/users/"+alice.ID, bob.Token, nil); u.Body["avatarUrl"] != avatarURL {
				t.Errorf("public user's avatarUrl %v", u.Body["avatarUrl"])
			}
		})
		t.Run("not found and unauthorized", func(t *testing.T) {
			wantError(t, "no credentials", get(t, url, ""), 401, "unauthorized")
			wantError(t, "user without avatar", get(t, srv.URL+"/api/users/"+bob.ID+"/avatar", alice.Token), 404, "not_found")
			wantError(t, "malformed user id", get(t, srv.URL+"/api/users/zzz/avatar", alice.Token), 404, "not_found")
			wantError(t, "unknown user", get(t, srv.URL+"/api/users/"+store.NewID()+"/avatar", alice.Token), 404, "not_found")
		})
		t.Run("only raster images", func(t *testing.T) {
			svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)
			png := pngBytes(t, color.Black)
			for _, p := range []part{
				filePart("me.png", "image/png", []byte("just some text, not an image")),
				filePart("me.svg", "image/svg+xml", svg),
				filePart("me.png", "image/png", []byte("<html><script>alert(1)</script></html>")),
				// The right magic bytes and nothing behind them.
				filePart("me.png", "image/png", png[:16]),
				filePart("me.webp", "image/webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 garbage!")),
				filePart("me.pdf", "image/png", []byte("%PDF-1.4\n")),
			} {
				wantError(t, "avatar "+p.filename, put(p), 415, "unsupported_media_type")
			}
			if me := stack.Call(t, "GET", srv.URL+"/api/me", alice.Token, nil); avatarID(me) != id1 {
				t.Fatalf("a refused avatar replaced the avatar: %s", me.Raw)
			}
		})
		t.Run("jpeg and webp accepted", func(t *testing.T) {
			for _, c := range []struct {
				p    part
				want string
			}{
				{filePart("me.jpg", "", jpegBytes(t)), "image/jpeg"},
				{filePart("me.webp", "", webpBytes(t)), "image/webp"},
			} {
				r := put(c.p)
				if r.Status != 200 {
					t.Fatalf("%s avatar: %d %s", c.want, r.Status, r.Raw)
				}
				if g := get(t, srv.URL+r.Body["avatarUrl"].(string), bob.Token); g.Header.Get("Content-Type") != c.want {
					t.Fatalf("%s avatar served as %q", c.want, g.Header.Get("Content-Type"))
				}
				id1 = avatarID(r)
			}
		})
		t.Run("replacing removes the old file", func(t *testing.T) {
			second := gifBytes(t)
			r := put(filePart("me.gif", "", second))
			if r.Status != 200 {
				t.Fatalf("replace: %d %s", r.Status, r.Raw)
			}
			id2 := avatarID(r)
			if id2 == id1 {
				t.Fatal("avatarUrl did not change")
			}
			if g := get(t, srv.URL+r.Body["avatarUrl"].(string), bob.Token); g.Status != 200 || g.Header.Get("Content-Type") != "image/gif" || !bytes.Equal(g.Raw, second) {
				t.Fatalf("new avatar: %d %q", g.Status, g.Header.Get("Content-Type"))
			}
			wantError(t, "old avatar file, by its owner", get(t, srv.URL+"/api/files/"+id1, alice.Token), 404, "not_found")
			if g := get(t, srv.URL+"/api/files/"+id2, alice.Token); g.Status != 200 {
				t.Fatalf("new avatar file by its owner: %d", g.Status)
			}
			if _, err := srv.Store.FileByID(t.Context(), id1); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the store still has the old avatar: %v", err)
			}
		})
		t.Run("an avatar is not an attachment", func(t *testing.T) {
			me := stack.Call(t, "GET", srv.URL+"/api/me", alice.Token, nil)
			c := stack.Call(t, "POST", srv.URL+"/api/chats", alice.Token, map[string]any{"type": "direct", "userId": bob.ID})
			r := stack.Call(t, "POST", srv.URL+"/api/chats/"+c.Body["id"].(string)+"/messages", alice.Token, map[string]any{"attachments": []string{avatarID(me)}})
			wantError(t, "attach own avatar", r, 400, "invalid_input")
		})
	})
}

func TestOrphanSweep(t *testing.T) {
	stack.ForEachStore(t, func(t *testing.T, srv *stack.Server) {
		a, b := stack.Signup(t, srv.URL, "sweep"), stack.Signup(t, srv.URL, "peer")
		orphan := uploadFile(t, srv, a.Token, filePart("orphan.txt", "", []byte("never sent")))["id"].(string)
		sent := uploadFile(t, srv, a.Token, filePart("sent.txt", "", []byte("sent")))["id"].(string)
		r := stack.Call(t, "POST", srv.URL+"/api/chats", a.Token, map[string]any{"type": "direct", "userId": b.ID})
		if r.Status != 201 {
			t.Fatalf("create chat: %d %s", r.Status, r.Raw)
		}
		if r := stack.Call(t, "POST", srv.URL+"/api/chats/"+r.Body["id"].(string)+"/messages", a.Token,
			map[string]any{"text": "here", "attachments": []string{sent}}); r.Status != 201 {
			t.Fatalf("send: %d %s", r.Status, r.Raw)
		}
		me := upload(t, "PUT", srv.URL+"/api/me/avatar", a.Token, false, filePart("me.png", "", pngBytes(t, color.White)))
		if me.Status != 200 {
			t.Fatalf("avatar: %d %s", me.Status, me.Raw)
		}

		st := srv.Store
		// A cut-off in the future makes every file old enough.
		n, err := files.SweepOrphans(t.Context(), st, time.Now().Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("SweepOrphans = %d, %v; want 1 file removed", n, err)
		}
		wantError(t, "the orphan", get(t, srv.URL+"/api/files/"+orphan, a.Token), 404, "not_found")
		if r := get(t, srv.URL+"/api/files/"+sent, b.Token); r.Status != 200 {
			t.Fatalf("the attached file: %d", r.Status)
		}
		if r := get(t, srv.URL+me.Body["avatarUrl"].(string), b.Token); r.Status != 200 {
			t.Fatalf("the avatar: %d", r.Status)
		}
		// The real cut-off (ORPHAN_FILE_TTL ago) spares a file just uploaded.
		fresh := uploadFile(t, srv, a.Token, filePart("fresh.txt", "", []byte("new")))["id"].(string)
		if n, err := files.SweepOrphans(t.Context(), st, time.Now().Add(-stack.OrphanFileTTL)); err != nil || n != 0 {
			t.Fatalf("sweep with the configured TTL = %d, %v; want nothing removed", n, err)
		}
		if r := get(t, srv.URL+"/api/files/"+fresh, a.Token); r.Status != 200 {
			t.Fatalf("fresh file: %d", r.Status)
		}
	})
}
