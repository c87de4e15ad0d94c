# tests/debian.rs sysv_ipcs_same_as_native: util-linux ipcmk/ipcs/ipcrm on SysV shm, sem and msg objects (ids, keys, pids and times masked), attached and used through ctypes; run by umlrun-job in the Debian guest and natively in a chroot.
set -e
id_of() { awk '{print $NF}'; }
export m=$(ipcmk -M 8192 -p 0640 | id_of) s=$(ipcmk -S 3 -p 0600 | id_of) q=$(ipcmk -Q -p 0660 | id_of)
cat >/tmp/rows <<'SH'
row() { ipcs "$1" | awk -v id="$2" '$2 == id { $1 = ""; $2 = ""; print "'"$1"'" $0 }'; }
row -m "$m"; row -s "$s"; row -q "$q"
ipcs -m -i "$m" | grep -E '^(uid|mode|bytes)' | tr -s ' \t' ' ' | sed 's/pid=[0-9]*/pid=N/g'
ipcs -s -i "$s" | awk '/^(uid|mode|nsems)/ { print } /^[0-9]/ { print $1, $2, $3, $4 }' | tr -s ' \t' ' '
ipcs -q -i "$q" | grep -E '^(uid|mode|cbytes)' | tr -s ' \t' ' ' | sed 's/pid=[0-9]*/pid=N/g'
SH
echo "-- made"; sh /tmp/rows
python3 - <<'PY'
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
m, s, q = (int(os.environ[k]) for k in "msq")
a = libc.shmat(m, None, 0)
ctypes.memmove(a, b"hello", 5)
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 16)]
assert libc.msgsnd(q, ctypes.byref(Msg(1, b"0123456789")), 10, 0) == 0
class Sembuf(ctypes.Structure):
    _fields_ = [("num", ctypes.c_ushort), ("op", ctypes.c_short), ("flg", ctypes.c_short)]
assert libc.semop(s, ctypes.byref(Sembuf(1, 5, 0)), 1) == 0
print("-- attached, sent, semop", flush=True)
subprocess.run(["sh", "/tmp/rows"], check=True)
libc.shmdt(ctypes.c_void_p(a))
PY
echo "-- detached"; ipcs -m -i "$m" | grep -o 'nattch=[0-9]*'
ipcs -l
ipcrm -m "$m" -s "$s" -q "$q"
for o in m s q; do ipcs -$o | awk -v m="$m" -v s="$s" -v q="$q" -v o=$o '$2 == (o == "m" ? m : o == "s" ? s : q) { found = 1 } END { print o, found ? "still listed" : "removed" }'; done
