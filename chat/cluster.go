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
