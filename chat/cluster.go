package chat

// Forget drops the cached copy of a chat another node changed (its
// members or name): the next use loads it from the store.
func (s *Service) Forget(chatID string) {
	s.mu.Lock()
	delete(s.chats, chatID)
	s.mu.Unlock()
}

// ForgetAll drops every cached chat, for when notices of other nodes'
// changes may have been lost (the Redis link dropped).
func (s *Service) ForgetAll() {
	s.mu.Lock()
	clear(s.chats)
	s.mu.Unlock()
}

// OnChange registers fn to hear of each chat whose members or name this
// node changed, so other nodes can drop their cached copy. Set it before
// the service is used.
func (s *Service) OnChange(fn func(chatID string)) { s.onChange = fn }

// OnNumbered registers fn to hear, after each group commit, the last seq
// this node stored in each chat it wrote, so other nodes' counters can
// follow (see Numbered). fn runs on the writer's goroutine and owns the
// map: it must hand it off and return at once, since every send waits
// behind it. Set it before Run; unset (one node), nothing is collected.
func (s *Service) OnNumbered(fn func(last map[string]int64)) { s.writer.committed = fn }

// Numbered tells this node that another node stored messages up to last in
// each chat, so the next send here numbers after them instead of clashing
// on the unique (chatId, seq) index. A counter only ever moves forward, and
// a chat this node holds no counter for is ignored. A lost notice costs
// only a clash, which renumbers as before.
func (s *Service) Numbered(last map[string]int64) { s.writer.advance(last) }

// SeqClashes counts sends that another node's message refused on
// (chatId, seq) and that were numbered again: the cost of several nodes
// writing one chat at once.
func (s *Service) SeqClashes() uint64 { return s.writer.clashes.Load() }
