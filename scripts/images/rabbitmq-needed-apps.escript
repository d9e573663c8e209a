%% Prints the directory of `rabbit` and of every application of the plugins directory it needs,
%% transitively (rebound links only those into the node's plugins directory: see
%% harness/src/runtime/local/rabbitmq_libs.rs for why).
main([Dir]) ->
    [code:add_pathz(E) || E <- filelib:wildcard(Dir ++ "/*/ebin")],
    Needed = needed([rabbit], [], Dir),
    [io:format("~s~n", [code:lib_dir(A)]) || A <- lists:sort(Needed)].

needed([], Seen, _) -> Seen;
needed([A | T], Seen, Dir) ->
    InDir = case code:lib_dir(A) of
                {error, _} -> false;
                L -> lists:prefix(Dir, L)
            end,
    case lists:member(A, Seen) orelse not InDir of
        true -> needed(T, Seen, Dir);
        false ->
            ok = case application:load(A) of ok -> ok; {error, {already_loaded, _}} -> ok end,
            Keys = [K || Key <- [applications, included_applications],
                         {ok, K} <- [application:get_key(A, Key)]],
            needed(lists:append(Keys) ++ T, [A | Seen], Dir)
    end.
