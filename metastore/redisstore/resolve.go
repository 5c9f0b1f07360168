package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/dfs-project/dfs/metastore"
)

// resolvePath walks a path from the root inside Redis: the applied index
// ("0" when none), then the encoded inodes of the root and of each segment
// found, in order, stopping at the first segment that is missing (a file
// has no entries, so the walk stops there too). A script runs atomically:
// the index is the one the walk read at. Walking one segment from the client costs two round trips (HGET,
// GET); a GET of /a/b/c.txt cost seven before the script. The keys are
// built inside the script from the prefix, which a Redis Cluster would
// refuse; dfs gives each node one standalone Redis.
var resolvePath = redis.NewScript(`
local p = ARGV[1]
local out = {redis.call('GET', p .. 'applied') or '0'}
local ino = redis.call('GET', p .. 'i:1')
if not ino then return out end
out[2] = ino
local id = '1'
for i = 2, #ARGV do
	local child = redis.call('HGET', p .. 'd:' .. id, ARGV[i])
	if not child then return out end
	ino = redis.call('GET', p .. 'i:' .. child)
	if not ino then return out end
	out[#out + 1] = ino
	id = child
end
return out
`)

// ResolvePath implements metastore.PathResolver: one round trip, and a
// consistent view (a script runs atomically) however deep the path.
func (s *Store) ResolvePath(ctx context.Context, segs []string) ([]metastore.Inode, uint64, error) {
	args := make([]any, 0, len(segs)+1)
	args = append(args, s.prefix)
	for _, seg := range segs {
		args = append(args, seg)
	}
	vals, err := resolvePath.Run(ctx, s.rdb, nil, args...).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: resolve %d segments: %w", len(segs), err)
	}
	if len(vals) == 0 {
		return nil, 0, fmt.Errorf("redisstore: resolve: empty reply")
	}
	a, ok := vals[0].(string)
	if !ok {
		return nil, 0, fmt.Errorf("redisstore: resolve: applied index is %T", vals[0])
	}
	applied, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: resolve: applied index %q: %w", a, err)
	}
	out := make([]metastore.Inode, 0, len(vals)-1)
	for i, v := range vals[1:] {
		b, ok := v.(string)
		if !ok {
			return nil, 0, fmt.Errorf("redisstore: resolve: reply %d is %T, not an inode", i, v)
		}
		ino, err := metastore.DecodeInode([]byte(b))
		if err != nil {
			return nil, 0, fmt.Errorf("redisstore: resolve: inode %d: %w", i, err)
		}
		out = append(out, ino)
	}
	return out, applied, nil
}
