package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parley-chat/parley/files"
	"github.com/parley-chat/parley/internal/apperr"
	"github.com/parley-chat/parley/internal/str"
	"github.com/parley-chat/parley/internal/wire"
	"github.com/parley-chat/parley/store"
	"golang.org/x/sync/singleflight"
)

// Store is the part of the store the chat domain needs.
type Store interface {
	store.Chats
	store.Messages
	files.FileLookup
	UsersByIDs(ctx context.Context, ids []string) ([]store.User, error)
	MarkAttached(ctx context.Context, ids []string) error
}

// The file service asks the chat service who is in a chat.
var _ files.Membership = (*Service)(nil)

// View is a chat as one member sees it: its last message (nil for none)
// and how many messages that member has not read. internal/wire renders it.
type View struct {
	Chat   *store.Chat
	Last   *store.Message
	Unread int
}

// Sent is a stored message with its rendering, made once: the broadcast,
// the socket ack and the REST answer all carry this one value. Created is
// false when clientMsgId named a message already stored.
type Sent struct {
	Message  *store.Message
	Rendered wire.Message
	Created  bool
}

// Service runs chats and messages.
type Service struct {
	st     Store
	bc     Broadcaster
	limits Limits
	log    *slog.Logger
	now    func() time.Time

	// chats caches chats (with members) by id, off the per-message path's
	// database round trips. Membership changes on this node refresh it.
	mu    sync.RWMutex
	chats map[string]*store.Chat
	loads singleflight.Group
	// onChange hears of this node's changes to a chat (see OnChange).
	onChange func(chatID string)

	writer *writer
}

// New returns a chat service; Run must be running for sends to complete.
func New(st Store, bc Broadcaster, limits Limits, log *slog.Logger) *Service {
	s := &Service{st: st, bc: bc, limits: limits, log: log, now: time.Now, chats: map[string]*store.Chat{}}
	s.writer = newWriter(st, log)
	return s
}

// SetBroadcaster sets where events go; the events server is built after the
// service, so wiring sets it late.
func (s *Service) SetBroadcaster(bc Broadcaster) { s.bc = bc }

// Run commits sends until ctx ends; pending sends then fail as unavailable.
func (s *Service) Run(ctx context.Context) { s.writer.run(ctx) }

var errNoChat = apperr.New(apperr.NotFound, "no such chat")

// chat returns the chat if userID is a member; anything else is not_found,
// so existence never leaks. A member the cached copy knows costs no read.
// A miss, or a cached copy that does not know userID, is settled by the
// store: another node may have added them a moment ago, before its notice
// (see Forget) arrived here. The fresh copy then replaces the cached one.
func (s *Service) chat(ctx context.Context, userID, chatID string) (*store.Chat, error) {
	if !store.ValidID(chatID) {
		return nil, errNoChat
	}
	s.mu.RLock()
	c, ok := s.chats[chatID]
	s.mu.RUnlock()
	if ok && memberOf(c, userID) != nil {
		return c, nil
	}
	c, err := s.load(ctx, chatID)
	if err != nil {
		return nil, err
	}
	if memberOf(c, userID) == nil {
		return nil, errNoChat
	}
	return c, nil
}

// load reads a chat from the store into the cache. Concurrent loads of one
// chat share one read, so a burst of refused requests (a non-member's, or
// many sockets after ForgetAll) costs the store one query at a time. The
// shared read does not end with the caller that started it (another may
// still want its answer); each caller stops waiting when its own ctx ends.
func (s *Service) load(ctx context.Context, chatID string) (*store.Chat, error) {
	ch := s.loads.DoChan(chatID, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		c, err := s.st.ChatByID(rctx, chatID)
		if errors.Is(err, store.ErrNotFound) {
			s.Forget(chatID)
			return nil, errNoChat
		}
		if err != nil {
			return nil, fmt.Errorf("load chat: %w", err)
		}
		s.remember(c)
		return c, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*store.Chat), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loadTimeout bounds a shared chat read, which no caller's context ends.
const loadTimeout = 10 * time.Second

func (s *Service) remember(c *store.Chat) {
	s.mu.Lock()
	s.chats[c.ID] = c
	s.mu.Unlock()
}

// reload refreshes the cached copy after a change.
func (s *Service) reload(ctx context.Context, chatID string) (*store.Chat, error) {
	c, err := s.st.ChatByID(ctx, chatID)
	if err != nil {
		s.mu.Lock()
		delete(s.chats, chatID)
		s.mu.Unlock()
		return nil, fmt.Errorf("reload chat: %w", err)
	}
	s.remember(c)
	if s.onChange != nil {
		s.onChange(chatID)
	}
	return c, nil
}

func memberOf(c *store.Chat, userID string) *store.Member {
	for i := range c.Members {
		if c.Members[i].UserID == userID {
			return &c.Members[i]
		}
	}
	return nil
}

func memberIDs(c *store.Chat) []string {
	ids := make([]string, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.UserID
	}
	return ids
}

// Send validates and stores a message, then delivers message:new to every
// socket of every member but origin. A clientMsgId that names a message
// already stored returns that one (Created false): the first one wins.
func (s *Service) Send(ctx context.Context, userID, origin string, in SendInput) (Sent, error) {
	c, err := s.chat(ctx, userID, in.ChatID)
	if err != nil {
		return Sent{}, err
	}
	m := &store.Message{ChatID: c.ID, SenderID: userID, Attachments: []store.Attachment{}}
	fields := map[string]string{}
	if in.Text != nil {
		if n := utf8.RuneCountInString(*in.Text); n < 1 || n > s.limits.MaxText {
			fields["text"] = fmt.Sprintf("1 to %d characters", s.limits.MaxText)
		}
		m.Text = *in.Text
	}
	if in.ClientMsgID != nil {
		if n := utf8.RuneCountInString(*in.ClientMsgID); n < 1 || n > s.limits.MaxClientMsgID {
			fields["clientMsgId"] = fmt.Sprintf("1 to %d characters", s.limits.MaxClientMsgID)
		}
		m.ClientMsgID = *in.ClientMsgID
	}
	if len(in.Attachments) > s.limits.MaxAttachments {
		fields["attachments"] = fmt.Sprintf("at most %d", s.limits.MaxAttachments)
	}
	if in.Text == nil && len(in.Attachments) == 0 {
		fields["text"] = "a message needs text or at least one attachment"
	}
	if len(fields) > 0 {
		return Sent{}, apperr.Invalid("invalid message", fields)
	}
	if m.ClientMsgID != "" && len(in.Attachments) > 0 {
		// A retry with attachments finds its first copy before checking
		// them again (a file may have changed hands since). A plain
		// message goes straight to the writer: the unique index on
		// (chat, sender, clientMsgId) refuses a second copy and the writer
		// answers with the first, so the common case, a new message,
		// costs no read (it was a fifth of the server's CPU under load).
		if prev, err := s.st.MessageByClientID(ctx, c.ID, userID, m.ClientMsgID); err == nil {
			return Sent{Message: prev, Rendered: wire.NewMessage(prev)}, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return Sent{}, fmt.Errorf("look up clientMsgId: %w", err)
		}
	}
	if len(in.Attachments) > 0 {
		if m.Attachments, err = files.Attachments(ctx, s.st, userID, in.Attachments); err != nil {
			return Sent{}, err
		}
		// Claim the files before the message is written: the orphan sweep
		// deletes only files still unattached (one conditional write), so
		// once claimed they stay; one it took between the check above and
		// the claim is found gone by the check again. A send that fails
		// after this leaves its files claimed, never swept: a small leak,
		// never a message pointing at nothing.
		if err := s.st.MarkAttached(ctx, in.Attachments); err != nil {
			return Sent{}, fmt.Errorf("claim attachments: %w", err)
		}
		if m.Attachments, err = files.Attachments(ctx, s.st, userID, in.Attachments); err != nil {
			return Sent{}, err
		}
	}
	m.ID = store.NewID()
	m.CreatedAt = s.now().UTC().Truncate(time.Millisecond)
	stored, created, err := s.writer.submit(ctx, m)
	if err != nil {
		return Sent{}, err
	}
	sent := Sent{Message: stored, Rendered: wire.NewMessage(stored), Created: created}
	if created {
		s.bc.ToChat(c.ID, EventMessageNew, sent.Rendered, origin)
	}
	return sent, nil
}

// History pages a chat's messages in ascending seq.
func (s *Service) History(ctx context.Context, userID, chatID string, q HistoryQuery) ([]store.Message, bool, error) {
	c, err := s.chat(ctx, userID, chatID)
	if err != nil {
		return nil, false, err
	}
	limit := s.limits.DefaultPage
	fields := map[string]string{}
	if q.Limit != nil {
		if *q.Limit < 1 {
			fields["limit"] = "at least 1"
		}
		limit = min(*q.Limit, s.limits.MaxPage)
	}
	if q.Before != nil && q.After != nil {
		fields["before"] = "before and after cannot be used together"
	}
	if q.Before != nil && *q.Before < 1 {
		fields["before"] = "at least 1"
	}
	if q.After != nil && *q.After < 0 {
		fields["after"] = "at least 0"
	}
	if len(fields) > 0 {
		return nil, false, apperr.Invalid("invalid history query", fields)
	}
	var msgs []store.Message
	var more bool
	switch {
	case q.Before != nil:
		msgs, more, err = s.st.History(ctx, c.ID, *q.Before, 0, limit)
	case q.After != nil && *q.After == 0:
		// The store's after counts from 1; seqs have no gaps, so the
		// oldest page is exactly the one below limit+1.
		msgs, _, err = s.st.History(ctx, c.ID, int64(limit)+1, 0, limit)
		if err == nil && len(msgs) == limit {
			var last int64
			last, err = s.st.LastSeq(ctx, c.ID)
			more = last > msgs[len(msgs)-1].Seq
		}
	case q.After != nil:
		msgs, more, err = s.st.History(ctx, c.ID, 0, *q.After, limit)
	default:
		msgs, more, err = s.st.History(ctx, c.ID, 0, 0, limit)
	}
	if err != nil {
		return nil, false, fmt.Errorf("history: %w", err)
	}
	return msgs, more, nil
}

// MarkRead moves the caller's read mark forward and tells the chat's other
// sockets; an older seq changes nothing and is not relayed.
func (s *Service) MarkRead(ctx context.Context, userID, origin, chatID string, seq int64) error {
	c, err := s.chat(ctx, userID, chatID)
	if err != nil {
		return err
	}
	if seq < 0 {
		return apperr.Field("seq", "at least 0")
	}
	last, err := s.st.LastSeq(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	seq = min(seq, last)
	moved, err := s.st.SetReadSeq(ctx, c.ID, userID, seq)
	if err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	if moved {
		s.bc.ToChat(c.ID, EventMessageRead, wire.Read{ChatID: c.ID, UserID: userID, Seq: seq}, origin)
	}
	return nil
}

// Typing relays a typing state to the chat's other members (not to the
// typer's own other devices).
func (s *Service) Typing(ctx context.Context, userID, origin, chatID string, isTyping bool) error {
	c, err := s.chat(ctx, userID, chatID)
	if err != nil {
		return err
	}
	others := make([]string, 0, len(c.Members)-1)
	for _, m := range c.Members {
		if m.UserID != userID {
			others = append(others, m.UserID)
		}
	}
	s.bc.ToUsers(others, EventTyping, wire.Typing{ChatID: c.ID, UserID: userID, IsTyping: isTyping})
	return nil
}

// ChatOf returns the chat with its members if userID belongs to it, from
// the service's cache (a copy: callers may keep it); not_found otherwise.
// The MERN API renders its chats and deliveries from it.
func (s *Service) ChatOf(ctx context.Context, userID, chatID string) (*store.Chat, error) {
	c, err := s.chat(ctx, userID, chatID)
	if err != nil {
		return nil, err
	}
	cp := *c
	cp.Members = slices.Clone(c.Members)
	return &cp, nil
}

// Member answers not_found unless userID belongs to chatID.
func (s *Service) Member(ctx context.Context, userID, chatID string) error {
	_, err := s.chat(ctx, userID, chatID)
	return err
}

// MemberOfAny reports whether userID belongs to one of chatIDs: from the
// cache when it knows them as a member, else from one read of the user's
// chats, however many ids are asked about (a stranger probing a file that
// many chats carry costs one read, not one per chat).
func (s *Service) MemberOfAny(ctx context.Context, userID string, chatIDs []string) (bool, error) {
	s.mu.RLock()
	for _, id := range chatIDs {
		if c, ok := s.chats[id]; ok && memberOf(c, userID) != nil {
			s.mu.RUnlock()
			return true, nil
		}
	}
	s.mu.RUnlock()
	if len(chatIDs) == 0 {
		return false, nil
	}
	mine, err := s.Membership(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, id := range mine.ChatIDs {
		if slices.Contains(chatIDs, id) {
			return true, nil
		}
	}
	return false, nil
}

// Membership is what a connecting socket needs of its user's chats: their
// ids, for the rooms, and the users who share one, for the presence
// announcement, from one read.
type Membership struct {
	ChatIDs []string
	// Peers are the users who share a chat with the user, without them.
	Peers []string
}

// Membership reads the user's chats once, for a connecting socket's rooms
// and its presence announcement; the chats go into the cache on the way.
func (s *Service) Membership(ctx context.Context, userID string) (Membership, error) {
	chats, err := s.st.ChatsByMember(ctx, userID)
	if err != nil {
		return Membership{}, fmt.Errorf("chats of user: %w", err)
	}
	ids := make([]string, len(chats))
	for i := range chats {
		ids[i] = chats[i].ID
		s.remember(&chats[i])
	}
	return Membership{ChatIDs: ids, Peers: peersIn(chats, userID)}, nil
}

// Peers lists the users who share a chat with userID.
func (s *Service) Peers(ctx context.Context, userID string) ([]string, error) {
	chats, err := s.st.ChatsByMember(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("peers of user: %w", err)
	}
	return peersIn(chats, userID), nil
}

func peersIn(chats []store.Chat, userID string) []string {
	seen := map[string]bool{userID: true}
	var out []string
	for _, c := range chats {
		for _, m := range c.Members {
			if !seen[m.UserID] {
				seen[m.UserID] = true
				out = append(out, m.UserID)
			}
		}
	}
	return out
}

// view is c as userID sees it, and the time of its latest activity.
func (s *Service) view(ctx context.Context, userID string, c *store.Chat) (View, time.Time, error) {
	last, err := s.st.LastMessage(ctx, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		last, err = nil, nil
	}
	if err != nil {
		return View{}, time.Time{}, fmt.Errorf("last message: %w", err)
	}
	unread := 0
	activity := c.CreatedAt
	if last != nil {
		activity = last.CreatedAt
		var read int64
		if m := memberOf(c, userID); m != nil {
			read = m.ReadSeq
		}
		if last.Seq > read {
			if unread, err = s.st.CountUnread(ctx, c.ID, userID, read); err != nil {
				return View{}, time.Time{}, fmt.Errorf("unread: %w", err)
			}
		}
	}
	return View{Chat: c, Last: last, Unread: unread}, activity, nil
}

// List returns the caller's chats, newest activity first.
func (s *Service) List(ctx context.Context, userID string) ([]View, error) {
	chats, err := s.st.ChatsByMember(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list chats: %w", err)
	}
	type row struct {
		view View
		at   time.Time
	}
	rows := make([]row, len(chats))
	for i := range chats {
		v, at, err := s.view(ctx, userID, &chats[i])
		if err != nil {
			return nil, err
		}
		rows[i] = row{v, at}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].at.Equal(rows[j].at) {
			return rows[i].at.After(rows[j].at)
		}
		return rows[i].view.Chat.ID > rows[j].view.Chat.ID
	})
	out := make([]View, len(rows))
	for i, r := range rows {
		out[i] = r.view
	}
	return out, nil
}

// Get returns one chat the caller belongs to. Read marks are not cached, so
// the view reads the chat fresh.
func (s *Service) Get(ctx context.Context, userID, chatID string) (View, error) {
	if _, err := s.chat(ctx, userID, chatID); err != nil {
		return View{}, err
	}
	c, err := s.st.ChatByID(ctx, chatID)
	if err != nil {
		return View{}, fmt.Errorf("get chat: %w", err)
	}
	v, _, err := s.view(ctx, userID, c)
	return v, err
}

// CreateDirect returns the direct chat between userID and otherID, creating
// it (created=true) when there is none. It is idempotent per pair, also when
// both create it at once: the unique direct key decides.
func (s *Service) CreateDirect(ctx context.Context, userID, otherID string) (View, bool, error) {
	if otherID == userID {
		return View{}, false, apperr.Field("userId", "a direct chat needs another user")
	}
	if err := s.usersExist(ctx, []string{otherID}, "userId"); err != nil {
		return View{}, false, err
	}
	pair := []string{userID, otherID}
	slices.Sort(pair)
	key := pair[0] + ":" + pair[1]
	existing, err := s.st.ChatByDirectKey(ctx, key)
	if err == nil {
		v, _, err := s.view(ctx, userID, existing)
		return v, false, err
	}
	if !errors.Is(err, store.ErrNotFound) {
		return View{}, false, fmt.Errorf("find direct chat: %w", err)
	}
	c := &store.Chat{
		ID: store.NewID(), Type: store.ChatDirect, DirectKey: key, CreatedAt: s.now().UTC().Truncate(time.Millisecond),
		Members: []store.Member{{UserID: pair[0], Role: store.RoleMember}, {UserID: pair[1], Role: store.RoleMember}},
	}
	if err := s.st.CreateChat(ctx, c); err != nil {
		if store.ConflictOn(err) == store.ConflictDirectKey || errors.Is(err, store.ErrConflict) {
			if existing, err := s.st.ChatByDirectKey(ctx, key); err == nil {
				v, _, err := s.view(ctx, userID, existing)
				return v, false, err
			}
		}
		return View{}, false, fmt.Errorf("create direct chat: %w", err)
	}
	s.announceNew(c, pair)
	v, _, err := s.view(ctx, userID, c)
	return v, true, err
}

// CreateGroup creates a group owned by userID with the given members.
func (s *Service) CreateGroup(ctx context.Context, userID string, name *string, users []string) (View, error) {
	clean, reason := cleanName(name)
	if reason != "" {
		return View{}, apperr.Field("name", reason)
	}
	ids := dedupe(users, userID)
	if len(ids)+1 > s.limits.MaxGroup {
		return View{}, apperr.Field("memberIds", fmt.Sprintf("a group has at most %d members", s.limits.MaxGroup))
	}
	if err := s.usersExist(ctx, ids, "memberIds"); err != nil {
		return View{}, err
	}
	id := store.NewID()
	c := &store.Chat{
		ID: id, Type: store.ChatGroup, Name: clean, DirectKey: "group:" + id, CreatedAt: s.now().UTC().Truncate(time.Millisecond),
		Members: []store.Member{{UserID: userID, Role: store.RoleOwner}},
	}
	for _, m := range ids {
		c.Members = append(c.Members, store.Member{UserID: m, Role: store.RoleMember})
	}
	if err := s.st.CreateChat(ctx, c); err != nil {
		return View{}, fmt.Errorf("create group: %w", err)
	}
	s.announceNew(c, memberIDs(c))
	return View{Chat: c}, nil
}

// announceNew tells the users of a chat they are in it, and puts their
// live sockets in its room.
func (s *Service) announceNew(c *store.Chat, users []string) {
	s.remember(c)
	s.bc.JoinChat(users, c.ID)
	s.bc.ToUsers(users, EventChatNew, wire.NewChat(c, nil, 0))
}

// Rename renames a group (owner or admin).
func (s *Service) Rename(ctx context.Context, userID, chatID string, name *string) (View, error) {
	c, err := s.manage(ctx, userID, chatID)
	if err != nil {
		return View{}, err
	}
	clean, reason := cleanName(name)
	if reason != "" {
		return View{}, apperr.Field("name", reason)
	}
	if err := s.st.RenameChat(ctx, c.ID, clean); err != nil {
		return View{}, fmt.Errorf("rename chat: %w", err)
	}
	if c, err = s.reload(ctx, c.ID); err != nil {
		return View{}, err
	}
	s.bc.ToUsers(memberIDs(c), EventChatUpdate, wire.NewChat(c, nil, 0))
	return s.Get(ctx, userID, c.ID)
}

// AddMembers adds users to a group (owner or admin).
func (s *Service) AddMembers(ctx context.Context, userID, chatID string, userIDs []string) (View, error) {
	c, err := s.manage(ctx, userID, chatID)
	if err != nil {
		return View{}, err
	}
	var fresh []string
	for _, id := range dedupe(userIDs, "") {
		if memberOf(c, id) == nil {
			fresh = append(fresh, id)
		}
	}
	if len(userIDs) == 0 {
		return View{}, apperr.Field("userIds", "at least one user")
	}
	if len(c.Members)+len(fresh) > s.limits.MaxGroup {
		return View{}, apperr.Field("userIds", fmt.Sprintf("a group has at most %d members", s.limits.MaxGroup))
	}
	if err := s.usersExist(ctx, fresh, "userIds"); err != nil {
		return View{}, err
	}
	if len(fresh) > 0 {
		add := make([]store.Member, len(fresh))
		for i, id := range fresh {
			add[i] = store.Member{UserID: id, Role: store.RoleMember}
		}
		if err := s.st.AddMembers(ctx, c.ID, add); err != nil {
			return View{}, fmt.Errorf("add members: %w", err)
		}
		before := memberIDs(c)
		if c, err = s.reload(ctx, c.ID); err != nil {
			return View{}, err
		}
		s.bc.ToUsers(before, EventChatUpdate, wire.NewChat(c, nil, 0))
		s.bc.JoinChat(fresh, c.ID)
		for _, id := range fresh {
			v, _, err := s.view(ctx, id, c)
			if err != nil {
				return View{}, err
			}
			s.bc.ToUsers([]string{id}, EventChatNew, wire.NewChat(v.Chat, v.Last, v.Unread))
		}
	}
	return s.Get(ctx, userID, c.ID)
}

// RemoveMember removes targetID from a group: owners remove anyone, admins
// remove members, and anyone may leave. An owner who leaves hands the group
// to an admin, else to the longest-standing member.
func (s *Service) RemoveMember(ctx context.Context, userID, chatID, targetID string) error {
	c, err := s.chat(ctx, userID, chatID)
	if err != nil {
		return err
	}
	if c.Type != store.ChatGroup {
		return apperr.New(apperr.InvalidInput, "members of a direct chat cannot change")
	}
	target := memberOf(c, targetID)
	if target == nil {
		return apperr.New(apperr.NotFound, "no such member")
	}
	me := memberOf(c, userID)
	if targetID != userID {
		switch {
		case me.Role == store.RoleOwner:
		case me.Role == store.RoleAdmin && target.Role == store.RoleMember:
		default:
			return apperr.New(apperr.Forbidden, "only the owner or an admin can remove members")
		}
	}
	if err := s.st.RemoveMember(ctx, c.ID, targetID); err != nil {
		return fmt.Errorf("remove member: %w", err)
	}
	if target.Role == store.RoleOwner {
		if err := s.handOver(ctx, c, targetID); err != nil {
			return err
		}
	}
	if c, err = s.reload(ctx, c.ID); err != nil {
		return err
	}
	s.bc.LeaveChat([]string{targetID}, c.ID)
	s.bc.ToUsers([]string{targetID}, EventChatRemoved, wire.ChatRemoved{ChatID: c.ID})
	s.bc.ToUsers(memberIDs(c), EventChatUpdate, wire.NewChat(c, nil, 0))
	return nil
}

// handOver gives a group whose owner left a new owner. The store has no
// role update, so the heir is re-added with the owner role.
func (s *Service) handOver(ctx context.Context, c *store.Chat, leaving string) error {
	var heir *store.Member
	for i := range c.Members {
		m := &c.Members[i]
		if m.UserID == leaving {
			continue
		}
		if heir == nil || (m.Role == store.RoleAdmin && heir.Role != store.RoleAdmin) {
			heir = m
		}
	}
	if heir == nil {
		return nil
	}
	if err := s.st.RemoveMember(ctx, c.ID, heir.UserID); err != nil {
		return fmt.Errorf("hand over group: %w", err)
	}
	if err := s.st.AddMembers(ctx, c.ID, []store.Member{{UserID: heir.UserID, Role: store.RoleOwner, ReadSeq: heir.ReadSeq}}); err != nil {
		return fmt.Errorf("hand over group: %w", err)
	}
	return nil
}

// manage returns a group the caller may administer.
func (s *Service) manage(ctx context.Context, userID, chatID string) (*store.Chat, error) {
	c, err := s.chat(ctx, userID, chatID)
	if err != nil {
		return nil, err
	}
	if c.Type != store.ChatGroup {
		return nil, apperr.New(apperr.InvalidInput, "a direct chat has no name or members to change")
	}
	if r := memberOf(c, userID).Role; r != store.RoleOwner && r != store.RoleAdmin {
		return nil, apperr.New(apperr.Forbidden, "only the owner or an admin can change the group")
	}
	return c, nil
}

func (s *Service) usersExist(ctx context.Context, ids []string, field string) error {
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if !store.ValidID(id) {
			return apperr.Field(field, "unknown user "+str.Shorten(id, 24))
		}
	}
	found, err := s.st.UsersByIDs(ctx, ids)
	if err != nil {
		return fmt.Errorf("check users: %w", err)
	}
	if len(found) != len(ids) {
		have := map[string]bool{}
		for _, u := range found {
			have[u.ID] = true
		}
		for _, id := range ids {
			if !have[id] {
				return apperr.Field(field, "unknown user "+id)
			}
		}
	}
	return nil
}

func dedupe(ids []string, without string) []string {
	seen := map[string]bool{without: true}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func cleanName(name *string) (string, string) {
	if name == nil {
		return "", "required"
	}
	n := strings.TrimSpace(*name)
	if c := utf8.RuneCountInString(n); c < 1 || c > 100 {
		return "", "1 to 100 characters"
	}
	if strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return "", "no control characters"
	}
	return n, ""
}
