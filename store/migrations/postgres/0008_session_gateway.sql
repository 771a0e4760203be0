-- Which gateway holds each session: the one that opened it, then the one it last resumed on, so
-- `rampart sessions list` on any node says where every live session is.
ALTER TABLE sessions ADD COLUMN gateway_id TEXT NULL;
