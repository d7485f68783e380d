#!/usr/bin/python3
# Drives a Librarian with tm-librarian's own Python client code (socket_handling.Client,
# cmdproto.LibrarianCommandProtocol, book_shelf_bos.TMShelf/TMBook), the way lfs_fuse does:
# every reply must be accepted by the original client and record classes.
# Usage: tm-librarian-client.py TM_LIBRARIAN_SRC PORT NODE_ID BOOK_SIZE
# Exit status 3: the Librarian refused the client for want of a secret (docs/librarian.md).
import errno
import signal
import sys

sys.path.insert(0, sys.argv[1] + '/src')
from book_shelf_bos import TMBook, TMShelf          # noqa: E402
from cmdproto import LibrarianCommandProtocol       # noqa: E402
from socket_handling import Client                  # noqa: E402

port, node, book = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
signal.alarm(60)        # the original client waits forever for a reply that never comes
failures = 0


def check(cond, what):
    global failures
    print(('ok: ' if cond else 'FAIL: ') + what)
    if not cond:
        failures += 1


enc, n = (node - 1) // 10 + 1, (node - 1) % 10 + 1
lcp = LibrarianCommandProtocol({'umask': 18, 'node_id': node, 'physloc': '1_%d_%d' % (enc, n), 'seq': 0,
                                'uid': 1000, 'gid': 1000, 'pid': 4242, 'tid': 1})
torms = Client(selectable=False)
check(torms.connect(host='127.0.0.1', port=port, retry=False), 'connect')


def librarian(cmdict):
    '''lfs_fuse.librarian(): send, receive until a reply, errors as (errno, errmsg)'''
    seq = cmdict['context']['seq']
    torms.send_all(cmdict)
    rsp = None
    while rsp is None:
        rsp = torms.recv_all()
    if 'errmsg' in rsp:
        return None, rsp['errno'], rsp['errmsg']
    assert rsp['context']['seq'] == seq, 'seq mismatch'
    return rsp['value'], 0, ''


stats, e, msg = librarian(lcp('get_fs_stats'))
if e == errno.EACCES and 'not authenticated' in msg:
    # a Librarian that asks for a secret (FAM/E's default): the original client sends none
    print('refused: errno %d: %s' % (e, msg))
    sys.exit(3)
check(e == 0 and stats['book_size_bytes'] == book and stats['BIImode'] == 0, 'get_fs_stats, as lfs_fuse starts')
check(all(isinstance(k, str) and len(v) == 2 for k, v in stats['books_per_IG'].items()), 'books_per_IG: "IG": [books, base]')
_, e, _ = librarian(lcp('update_node_soc_status', status=1, cpu_percent=1, rootfs_percent=2, network_in=0,
                        network_out=0, mem_percent=3))
check(e == 0, 'update_node_soc_status')
_, e, _ = librarian(lcp('update_node_mc_status', status=1))
check(e == 0, 'update_node_mc_status')
v, e, _ = librarian(lcp('version'))
check(v == 'LIBRARIAN 0.997', 'version')

rsp, e, _ = librarian(lcp('create_shelf', path='/compat', mode=0o100644))
shelf = TMShelf(rsp)
handle = shelf.open_handle
check(e == 0 and shelf.name == 'compat' and shelf.open_handle and shelf.link_count == 1, 'create_shelf -> TMShelf, open')
rsp, e, _ = librarian(lcp('get_shelf', path='/compat'))
check(TMShelf(rsp).id == shelf.id, 'get_shelf')
rsp, e, _ = librarian(lcp('resize_shelf', path='/compat', id=shelf.id, size_bytes=3 * book - 1, zero_enabled=True))
check(e == 0 and rsp == {'z_shelf_path': None}, 'resize_shelf grows: z_shelf_path null')
shelf = TMShelf(librarian(lcp('get_shelf', path='/compat'))[0])
check(shelf.book_count == 3, 'book_count 3')
path, e, _ = librarian(lcp('get_shelf_path', shelf))
check(path == '/compat', 'get_shelf_path from a TMShelf object (duck typing)')
bos, e, _ = librarian(lcp('list_shelf_books', path='/compat'))
books = [TMBook(b) for b in bos]
check(len(books) == 3 and all(b.allocated == 1 for b in books), 'list_shelf_books -> TMBook')
check(all(b.id == (b.intlv_group << 46) | (b.book_num << 33) for b in books), 'LZA ids')

for name, want in (('user.LFS.AllocationPolicy', 'RandomBooks'), ('user.LFS.InterleaveRequest', '')):
    v, e, _ = librarian(lcp('get_xattr', path='/compat', xattr=name))
    check(e == 0 and v['value'] == want, 'get_xattr %s (nested value)' % name)
v, e, _ = librarian(lcp('get_xattr', path='/compat', xattr='user.LFS.Interleave'))
check(len(v['value']) == 3 and [ord(c) for c in v['value']] == [b.intlv_group for b in books], 'Interleave xattr')
v, e, _ = librarian(lcp('get_xattr', path='/compat', xattr='user.absent'))
check(v['value'] is None, 'absent xattr is null (ENODATA in lfs_fuse)')
_, e, _ = librarian(lcp('set_xattr', path='/compat', xattr='user.note', value='h\u00e9llo'))
v, e, _ = librarian(lcp('get_xattr', path='/compat', xattr='user.note'))
check(v['value'] == 'h\u00e9llo', 'non-ASCII value round trip (\\u escapes)')
v, e, _ = librarian(lcp('list_xattrs', path='/compat'))
check(v['value'] == sorted(v['value']) and 'user.note' in v['value'], 'list_xattrs sorted')

# shrink while another (node, pid) has it open
lcp2 = LibrarianCommandProtocol({'node_id': node, 'seq': 100, 'uid': 1000, 'gid': 1000, 'pid': 4343})
rsp, e, _ = librarian(lcp2('open_shelf', path='/compat'))
other = TMShelf(rsp)
_, e, _ = librarian(lcp('resize_shelf', path='/compat', id=shelf.id, size_bytes=0, zero_enabled=True))
check(e == errno.EMFILE, 'shrink while multiply opened: EMFILE')
rsp, e, _ = librarian(lcp2('close_shelf', id=other.id, open_handle=other.open_handle))
check(e == 0 and TMShelf(rsp).id == other.id, 'close_shelf skeleton -> TMShelf')

listing, e, _ = librarian(lcp('list_shelves', path='/'))
names = [TMShelf(s).name for s in listing]
check(names[:2] == ['.', '..'] and 'compat' in names, 'list_shelves ., .., children')
_, e, _ = librarian(lcp('mkdir', path='/cdir', mode=16895))
_, e, _ = librarian(lcp('symlink', path='/cdir/ln', target='/compat'))
v, e, _ = librarian(lcp('readlink', path='/cdir/ln'))
check(v == '/compat', 'symlink/readlink')
_, e, _ = librarian(lcp('rmdir', path='/cdir'))
check(e == errno.ENOTEMPTY, 'rmdir non-empty: ENOTEMPTY')
_, e, _ = librarian(lcp('rename_shelf', path='/cdir/ln', id=0, newpath='/compat'))
check(e == errno.EEXIST, 'rename onto an existing name: EEXIST')
_, e, _ = librarian(lcp('destroy_shelf', path='/compat'))
check(e == errno.EBUSY, 'destroy while open: EBUSY')
_, e, _ = librarian(lcp('get_shelf', path='/nope'))
check(e == errno.ENOENT, 'ENOENT')

# lfs_fuse's unlink workflow: rename to a zeroing name, truncate to 0, destroy
librarian(lcp('close_shelf', id=shelf.id, open_handle=handle))
zname = '/.lfs_pending_zero_%d' % shelf.id
_, e, _ = librarian(lcp('rename_shelf', path='/compat', id=shelf.id, newpath=zname))
check(e == 0, 'rename to .lfs_pending_zero_')
bos, e, _ = librarian(lcp('list_shelf_books', path=zname))
check(all(TMBook(b).allocated == 2 for b in bos), 'its books are ZOMBIE')
_, e, _ = librarian(lcp('resize_shelf', path=zname, id=shelf.id, size_bytes=0, zero_enabled=True))
_, e, _ = librarian(lcp('destroy_shelf', path=zname))
check(e == 0, 'unlink workflow done')
librarian(lcp('destroy_shelf', path='/cdir/ln'))
librarian(lcp('rmdir', path='/cdir'))

# out-of-band: a second client receives the broadcast, the sender gets its node id
listener = Client(selectable=False)
listener.connect(host='127.0.0.1', port=port, retry=False)
v, e, _ = librarian(lcp('send_OOB', msg='hello nodes'))
check(e == 0 and v['value'] == node, 'send_OOB value is the sender node')
listener.send_all(LibrarianCommandProtocol({'node_id': node, 'seq': 0})('version'))
rsp, oob = None, []
while rsp is None:
    rsp = listener.recv_all()
    if listener.inOOB:          # lfs_fuse's handleOOB(): take them, go on
        oob.extend(listener.inOOB)
        del listener.inOOB[:]
check(oob == ['hello nodes'] and rsp['value'] == 'LIBRARIAN 0.997', 'the other client got the OOB message, then its reply')

sys.exit(1 if failures else 0)
