//! The typed example, a bank account: its balance at every version through checkpoints, and an
//! overdraft rejected without changing anything.

use helios_checkpoint::LevelPolicy;
use helios_replay::{
    Aggregate, AggregateMachine, Base, Rejected, View, encode_event, load_aggregate, replay,
};

use crate::support::{DeltaStyle, History};

/// The typed example: deposits and withdrawals, overdrafts rejected.
#[derive(Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct BankAccount {
    balance: u64,
    transactions_count: u32,
}

#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
enum AccountEvent {
    Deposited { amount: u64 },
    Withdrew { amount: u64 },
}

impl Aggregate for BankAccount {
    type Event = AccountEvent;

    fn name() -> &'static str {
        "bank-account"
    }

    fn apply(&mut self, event: &AccountEvent) -> Result<(), Rejected> {
        self.transactions_count += 1;
        match *event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrew { amount } => {
                self.balance = self.balance.checked_sub(amount).ok_or_else(|| {
                    Rejected::new(format!(
                        "overdraft: balance {}, withdrawal {amount}",
                        self.balance
                    ))
                })?;
            }
        }
        Ok(())
    }
}

/// A history of valid account events and the balance after each.
fn account_history() -> (History, Vec<u64>) {
    let mut balances = vec![0];
    let mut events = Vec::new();
    for i in 0..40u64 {
        let balance = balances[balances.len() - 1];
        let event = if i % 3 == 2 && balance >= 7 * i / 2 {
            AccountEvent::Withdrew { amount: 7 * i / 2 }
        } else {
            AccountEvent::Deposited { amount: i + 1 }
        };
        balances.push(match event {
            AccountEvent::Deposited { amount } => balance + amount,
            AccountEvent::Withdrew { amount } => balance - amount,
        });
        events.push(encode_event::<BankAccount>(&event).expect("archivable"));
    }
    // Checkpoint contents come from replaying from scratch; what is checked below is the
    // balance, computed above without the crate.
    let machine = AggregateMachine::<BankAccount>::new();
    let states = (0..=events.len())
        .map(|v| {
            View::replay(&machine, Base::new(), &events[..v])
                .expect("valid")
                .to_map()
        })
        .collect();
    let touched = vec![None; events.len()];
    (
        History {
            events,
            states,
            touched,
        },
        balances,
    )
}

#[test]
fn bank_account_balance_at_every_version() {
    let (history, balances) = account_history();
    let machine = AggregateMachine::<BankAccount>::new();
    let policy = LevelPolicy::new(3, 2).expect("valid");
    for (version, &balance) in (0u64..).zip(&balances) {
        let view = history
            .view(&machine, policy, version, DeltaStyle::Minimal)
            .expect("valid");
        let account = load_aggregate::<BankAccount>(&view).expect("a valid archive");
        assert_eq!(
            account,
            BankAccount {
                balance,
                transactions_count: u32::try_from(version).expect("small"),
            },
            "version {version}"
        );
        assert!(view.report().events_replayed < 3);
    }
}

#[test]
fn bank_account_overdraft_is_rejected_and_changes_nothing() {
    let (history, balances) = account_history();
    let machine = AggregateMachine::<BankAccount>::new();
    let policy = LevelPolicy::new(3, 2).expect("valid");
    let view = history
        .view(&machine, policy, 20, DeltaStyle::Minimal)
        .expect("valid");
    let mut overlay = view.overlay().clone();
    let overdraft = balances[20] + 1;
    let events = [
        encode_event::<BankAccount>(&AccountEvent::Deposited { amount: 0 }).expect("archivable"),
        encode_event::<BankAccount>(&AccountEvent::Withdrew { amount: overdraft })
            .expect("archivable"),
    ];
    let error = replay(&machine, view.base(), &mut overlay, &events).expect_err("overdraft");
    assert_eq!(
        error.to_string(),
        format!(
            "state machine `bank-account` rejected event 1 of the replay: \
             overdraft: balance {}, withdrawal {overdraft}",
            balances[20]
        )
    );
    let after = View::new(view.base().clone(), overlay);
    let account = load_aggregate::<BankAccount>(&after).expect("valid");
    assert_eq!(account.balance, balances[20]);
    assert_eq!(account.transactions_count, 21, "the zero deposit was kept");
}
