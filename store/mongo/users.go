package mongo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mdriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/parley-chat/parley/store"
)

type userDoc struct {
	ID          string `bson:"_id"`
	Username    string `bson:"username"`
	Email       string `bson:"email"`
	DisplayName string `bson:"displayName"`
	// Search matches display names ignoring case; MongoDB without collation
	// compares bytes, so the lower-cased form is stored beside the original.
	DisplayNameLower string         `bson:"displayNameLower"`
	PasswordHash     string         `bson:"passwordHash"`
	AvatarFileID     string         `bson:"avatarFileId"`
	PictureURL       string         `bson:"pictureUrl,omitempty"`
	LastSeenAt       *bson.DateTime `bson:"lastSeenAt,omitempty"`
	CreatedAt        bson.DateTime  `bson:"createdAt"`
}

func toUserDoc(u *store.User) userDoc {
	return userDoc{
		ID:               u.ID,
		Username:         u.Username,
		Email:            u.Email,
		DisplayName:      u.DisplayName,
		DisplayNameLower: strings.ToLower(u.DisplayName),
		PasswordHash:     u.PasswordHash,
		AvatarFileID:     u.AvatarFileID,
		PictureURL:       u.PictureURL,
		LastSeenAt:       optDate(u.LastSeenAt),
		CreatedAt:        toDate(u.CreatedAt),
	}
}

func (d *userDoc) user() store.User {
	return store.User{
		ID:           d.ID,
		Username:     d.Username,
		Email:        d.Email,
		DisplayName:  d.DisplayName,
		PasswordHash: d.PasswordHash,
		AvatarFileID: d.AvatarFileID,
		PictureURL:   d.PictureURL,
		LastSeenAt:   fromOptDate(d.LastSeenAt),
		CreatedAt:    fromDate(d.CreatedAt),
	}
}

// CreateUser inserts u. A duplicate is attributed to username before email:
// that is the order a sign-up form reports them in.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if u.ID == "" {
		u.ID = store.NewID()
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	_, err := s.users.InsertOne(ctx, toUserDoc(u))
	if mdriver.IsDuplicateKeyError(err) {
		return conflict(ctx, err,
			probe{store.ConflictUsername, idxUsername, s.users, bson.D{{Key: "username", Value: u.Username}}},
			probe{store.ConflictEmail, idxEmail, s.users, bson.D{{Key: "email", Value: u.Email}}},
			probe{store.ConflictID, idxPrimary, s.users, bson.D{{Key: "_id", Value: u.ID}}},
		)
	}
	if err != nil {
		return fmt.Errorf("mongo: insert user: %w", err)
	}
	return nil
}

func (s *Store) UserByID(ctx context.Context, id string) (*store.User, error) {
	var d userDoc
	if err := findOne(ctx, s.users, bson.D{{Key: "_id", Value: id}}, &d, "user", id); err != nil {
		return nil, err
	}
	u := d.user()
	return &u, nil
}

func (s *Store) UserByLogin(ctx context.Context, login string) (*store.User, error) {
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "username", Value: login}},
		bson.D{{Key: "email", Value: login}},
	}}}
	var d userDoc
	if err := findOne(ctx, s.users, filter, &d, "user with login", login); err != nil {
		return nil, err
	}
	u := d.user()
	return &u, nil
}

func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]store.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.findUsers(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
}

// SearchUsers matches prefixes with an anchored, escaped regex: MongoDB
// serves an anchored case-sensitive regex from the index, and escaping keeps
// characters such as "." or "*" literal.
func (s *Store) SearchUsers(ctx context.Context, prefix string, limit int) ([]store.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	re := bson.Regex{Pattern: "^" + regexp.QuoteMeta(prefix)}
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "username", Value: re}},
		bson.D{{Key: "displayNameLower", Value: re}},
	}}}
	opts := options.Find().SetSort(bson.D{{Key: "username", Value: 1}}).SetLimit(int64(limit))
	return s.findUsers(ctx, filter, opts)
}

// UsersContaining matches an unanchored, escaped regex; it scans.
func (s *Store) UsersContaining(ctx context.Context, sub string, limit int) ([]store.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	re := bson.Regex{Pattern: regexp.QuoteMeta(sub)}
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "displayNameLower", Value: re}},
		bson.D{{Key: "email", Value: re}},
	}}}
	opts := options.Find().SetSort(bson.D{{Key: "username", Value: 1}}).SetLimit(int64(limit))
	return s.findUsers(ctx, filter, opts)
}

func (s *Store) findUsers(ctx context.Context, filter any, opts ...options.Lister[options.FindOptions]) ([]store.User, error) {
	cur, err := s.users.Find(ctx, filter, opts...)
	if err != nil {
		return nil, fmt.Errorf("mongo: find users: %w", err)
	}
	var docs []userDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: read users: %w", err)
	}
	out := make([]store.User, len(docs))
	for i := range docs {
		out[i] = docs[i].user()
	}
	return out, nil
}

func (s *Store) UpdateUser(ctx context.Context, id string, upd store.UserUpdate) (*store.User, error) {
	set := bson.D{}
	if upd.DisplayName != nil {
		set = append(set,
			bson.E{Key: "displayName", Value: *upd.DisplayName},
			bson.E{Key: "displayNameLower", Value: strings.ToLower(*upd.DisplayName)})
	}
	if upd.PasswordHash != nil {
		set = append(set, bson.E{Key: "passwordHash", Value: *upd.PasswordHash})
	}
	if upd.AvatarFileID != nil {
		set = append(set, bson.E{Key: "avatarFileId", Value: *upd.AvatarFileID})
	}
	if len(set) == 0 {
		return s.UserByID(ctx, id)
	}
	var d userDoc
	err := s.users.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if errors.Is(err, mdriver.ErrNoDocuments) {
		return nil, notFound("user", id)
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: update user %q: %w", id, err)
	}
	u := d.user()
	return &u, nil
}

func (s *Store) SetLastSeen(ctx context.Context, id string, at time.Time) error {
	res, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastSeenAt", Value: toDate(at)}}}})
	if err != nil {
		return fmt.Errorf("mongo: set last seen of user %q: %w", id, err)
	}
	if res.MatchedCount == 0 {
		return notFound("user", id)
	}
	return nil
}
