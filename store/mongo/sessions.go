package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/store"
)

type sessionDoc struct {
	ID         string        `bson:"_id"`
	UserID     string        `bson:"userId"`
	UserAgent  string        `bson:"userAgent"`
	CreatedAt  bson.DateTime `bson:"createdAt"`
	LastSeenAt bson.DateTime `bson:"lastSeenAt"`
	ExpiresAt  bson.DateTime `bson:"expiresAt"`
}

func (d *sessionDoc) session() store.Session {
	return store.Session{
		ID:         d.ID,
		UserID:     d.UserID,
		UserAgent:  d.UserAgent,
		CreatedAt:  fromDate(d.CreatedAt),
		LastSeenAt: fromDate(d.LastSeenAt),
		ExpiresAt:  fromDate(d.ExpiresAt),
	}
}

func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	if sess.ID == "" {
		sess.ID = store.NewID()
	}
	if sess.CreatedAt.IsZero() {
		sess.CreatedAt = time.Now()
	}
	_, err := s.sessions.InsertOne(ctx, sessionDoc{
		ID:         sess.ID,
		UserID:     sess.UserID,
		UserAgent:  sess.UserAgent,
		CreatedAt:  toDate(sess.CreatedAt),
		LastSeenAt: toDate(sess.LastSeenAt),
		ExpiresAt:  toDate(sess.ExpiresAt),
	})
	if mdriver.IsDuplicateKeyError(err) {
		return &store.ConflictError{On: store.ConflictID}
	}
	if err != nil {
		return fmt.Errorf("mongo: insert session: %w", err)
	}
	return nil
}

func (s *Store) SessionByID(ctx context.Context, id string) (*store.Session, error) {
	var d sessionDoc
	if err := findOne(ctx, s.sessions, bson.D{{Key: "_id", Value: id}}, &d, "session", id); err != nil {
		return nil, err
	}
	sess := d.session()
	return &sess, nil
}

func (s *Store) SessionsByUser(ctx context.Context, userID string) ([]store.Session, error) {
	cur, err := s.sessions.Find(ctx, bson.D{{Key: "userId", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: find sessions of user %q: %w", userID, err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read sessions of user %q: %w", userID, err)
	}
	out := make([]store.Session, len(docs))
	for i := range docs {
		out[i] = docs[i].session()
	}
	return out, nil
}

func (s *Store) DeleteSession(ctx context.Context, id string) error {
	res, err := s.sessions.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("mongo: delete session %q: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return notFound("session", id)
	}
	return nil
}

// DeleteUserSessions reads the ids first because a delete does not report
// what it removed, and the caller must drop exactly those tokens from its
// caches. A session created between the read and the delete survives, as if
// it had been created just after the call.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, exceptID string) ([]string, error) {
	filter := bson.D{{Key: "userId", Value: userID}}
	if exceptID != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: exceptID}}})
	}
	cur, err := s.sessions.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: find sessions of user %q: %w", userID, err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read sessions of user %q: %w", userID, err)
	}
	if len(docs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	_, err = s.sessions.DeleteMany(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}},
		{Key: "userId", Value: userID},
	})
	if err != nil {
		return nil, fmt.Errorf("mongo: delete sessions of user %q: %w", userID, err)
	}
	return ids, nil
}

func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	res, err := s.sessions.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastSeenAt", Value: toDate(at)}}}})
	if err != nil {
		return fmt.Errorf("mongo: touch session %q: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return notFound("session", id)
	}
	return nil
}

type sessionPurgeDoc struct {
	ID        string        `bson:"_id"`
	UserID    string        `bson:"userId"`
	ExpiresAt bson.DateTime `bson:"expiresAt"`
	Pending   bool          `bson:"pending"`
}

func (s *Store) AddSessionPurges(ctx context.Context, ps []store.SessionPurge) error {
	for _, p := range ps {
		_, err := s.sessionPurges().UpdateOne(ctx, bson.D{{Key: "_id", Value: p.SessionID}},
			bson.D{{Key: "$set", Value: bson.D{
				{Key: "userId", Value: p.UserID}, {Key: "expiresAt", Value: toDate(p.ExpiresAt)}, {Key: "pending", Value: true},
			}}}, options.UpdateOne().SetUpsert(true))
		if err != nil && !mdriver.IsDuplicateKeyError(err) {
			return fmt.Errorf("mongo: add session purge %q: %w", p.SessionID, err)
		}
	}
	return nil
}

func (s *Store) SessionPurges(ctx context.Context, after string, limit int, pendingOnly bool) ([]store.SessionPurge, error) {
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}}
	if pendingOnly {
		filter = append(filter, bson.E{Key: "pending", Value: true})
	}
	cur, err := s.sessionPurges().Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongo: find session purges: %w", err)
	}
	var docs []sessionPurgeDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read session purges: %w", err)
	}
	out := make([]store.SessionPurge, len(docs))
	for i, d := range docs {
		out[i] = store.SessionPurge{SessionID: d.ID, UserID: d.UserID, ExpiresAt: fromDate(d.ExpiresAt), Pending: d.Pending}
	}
	return out, nil
}

func (s *Store) FinishSessionPurges(ctx context.Context, sids []string) error {
	if len(sids) == 0 {
		return nil
	}
	_, err := s.sessionPurges().UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: sids}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "pending", Value: false}}}})
	if err != nil {
		return fmt.Errorf("mongo: finish session purges: %w", err)
	}
	return nil
}

func (s *Store) DeleteExpiredSessionPurges(ctx context.Context, t time.Time) error {
	if _, err := s.sessionPurges().DeleteMany(ctx, bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lt", Value: toDate(t)}}}}); err != nil {
		return fmt.Errorf("mongo: delete expired session purges: %w", err)
	}
	return nil
}

// sessionPurges holds store.SessionPurge notes, keyed by session id.
func (s *Store) sessionPurges() *mdriver.Collection { return s.db.Collection("session_purges") }
